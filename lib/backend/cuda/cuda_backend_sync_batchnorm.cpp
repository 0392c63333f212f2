// CudaBackend's batch norm in the four pieces that SyncBatchNorm puts the ranks' exchanges
// between (backend.h): own kernels (sync_bn_kernels.cu) on NHWC activations, f32 or bf16.
// cuDNN's batch norm (persistent or not) computes its statistics inside one call, so it has
// no place for a cross-rank reduction and is not used here.
#include <algorithm>
#include <initializer_list>

#include "backend/cuda/checked_launch.h"
#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/cuda_operands.h"
#include "backend/cuda/sync_bn_kernels.h"

namespace dp::cuda {
namespace {

void check_sync_bn_operands(const BatchNormGeometry& g, const Tensor& x, const char* op,
                            std::initializer_list<const Tensor*> per_channel) {
  check_device(x, op, "input");
  for (const Tensor* t : per_channel) check_device(*t, op, "per-channel tensor");
  check_batchnorm_operands(g, x, per_channel);
  DP_CHECK(g.n * g.h * g.w > 0, "{}: batch norm over an empty batch", op);
}

void check_gradient(const Tensor& x, const Tensor& dy, const char* op) {
  check_device(dy, op, "output gradient");
  DP_CHECK(dy.shape() == x.shape(), "{}: output gradient {} does not match input {}", op,
           to_string(dy.shape()), to_string(x.shape()));
  check_same_type(x, dy, op);
}

}  // namespace

void CudaBackend::batchnorm_local_moments(const BatchNormGeometry& g, const Tensor& x, Tensor& mean,
                                          Tensor& m2) {
  check_sync_bn_operands(g, x, "batchnorm_local_moments", {});
  output(mean, {g.c});
  output(m2, {g.c});
  const int64_t rows = g.n * g.h * g.w;
  checked_launch(x, "batchnorm_local_moments", [&]<typename T>(ElementTag<T>) {
    kernels::bn_local_moments(x.data<T>(), rows, g.c, channel_partials(rows, g.c, 1), f(mean),
                              f(m2), ctx_.s());
  });
}

void CudaBackend::batchnorm_normalize(const BatchNormGeometry& g, const Tensor& x,
                                      const Tensor& gamma, const Tensor& beta, const Tensor& mean,
                                      const Tensor& invstd, Tensor& y) {
  check_sync_bn_operands(g, x, "batchnorm_normalize", {&gamma, &beta, &mean, &invstd});
  output(y, x.shape(), x.dtype());
  checked_launch(x, "batchnorm_normalize", [&]<typename T>(ElementTag<T>) {
    kernels::bn_normalize(x.data<T>(), f(gamma), f(beta), f(mean), f(invstd), g.fuse_relu,
                          y.data<T>(), g.n * g.h * g.w, g.c, ctx_.s());
  });
}

void CudaBackend::batchnorm_backward_sums(const BatchNormGeometry& g, const Tensor& x,
                                          const Tensor& dy, const Tensor& gamma, const Tensor& beta,
                                          const Tensor& mean, const Tensor& invstd, Tensor& sum_dy,
                                          Tensor& sum_dy_xhat) {
  check_sync_bn_operands(g, x, "batchnorm_backward_sums", {&gamma, &beta, &mean, &invstd});
  check_gradient(x, dy, "batchnorm_backward_sums");
  output(sum_dy, {g.c});
  output(sum_dy_xhat, {g.c});
  const int64_t rows = g.n * g.h * g.w;
  checked_launch(x, "batchnorm_backward_sums", [&]<typename T>(ElementTag<T>) {
    kernels::bn_backward_sums(x.data<T>(), dy.data<T>(), f(gamma), f(beta), f(mean), f(invstd),
                              g.fuse_relu, rows, g.c, channel_partials(rows, g.c, 2), f(sum_dy),
                              f(sum_dy_xhat), ctx_.s());
  });
}

void CudaBackend::batchnorm_backward_input(const BatchNormGeometry& g, const Tensor& x,
                                           const Tensor& dy, const Tensor& gamma,
                                           const Tensor& beta, const Tensor& mean,
                                           const Tensor& invstd, const Tensor& mean_dy,
                                           const Tensor& mean_dy_xhat, Tensor& dx) {
  check_sync_bn_operands(g, x, "batchnorm_backward_input",
                         {&gamma, &beta, &mean, &invstd, &mean_dy, &mean_dy_xhat});
  check_gradient(x, dy, "batchnorm_backward_input");
  output(dx, x.shape(), x.dtype());
  checked_launch(x, "batchnorm_backward_input", [&]<typename T>(ElementTag<T>) {
    kernels::bn_backward_input(x.data<T>(), dy.data<T>(), f(gamma), f(beta), f(mean), f(invstd),
                               f(mean_dy), f(mean_dy_xhat), g.fuse_relu, dx.data<T>(),
                               g.n * g.h * g.w, g.c, ctx_.s());
  });
}

}  // namespace dp::cuda
