// CudaBackend's batch norm on cuDNN: the descriptors of each geometry, training forward in the
// persistent NHWC mode where cuDNN and the operands allow it (else the plain calls), inference,
// and backward. The fused ReLU's output and backward's mask both come from the exactly rounded
// affine map of the saved statistics (sync_bn_kernels.h), so backward passes the gradient
// exactly where forward kept a value (cuDNN's own y, computed otherwise, could differ in sign
// from any recomputed mask on values within rounding of 0).
#include <algorithm>
#include <cstdint>
#include <initializer_list>

#include "backend/cuda/checked_launch.h"
#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/cuda_operands.h"
#include "backend/cuda/sync_bn_kernels.h"

namespace dp::cuda {
namespace {

// cuDNN's persistent NHWC kernels load every operand 16 bytes at a time, so operands that are
// not all aligned run the plain calls (see tests/bench/results/code-measurements-backend.md).
bool aligned_for_persistent_bn(std::initializer_list<const Tensor*> operands) {
  constexpr uintptr_t kVectorBytes = 16;
  for (const Tensor* t : operands)
    if (reinterpret_cast<uintptr_t>(t->data<void>()) % kVectorBytes != 0) return false;
  return true;
}

// Every operand on the device, in the shapes check_batchnorm_operands wants.
void check_batchnorm_device_operands(const BatchNormGeometry& g, const Tensor& x,
                                     std::initializer_list<const Tensor*> per_channel) {
  check_device(x, "batchnorm", "input");
  for (const Tensor* t : per_channel) check_device(*t, "batchnorm", "per-channel tensor");
  check_batchnorm_operands(g, x, per_channel);
}

}  // namespace

CudaBackend::BnDescs& CudaBackend::bn_descs(const BatchNormGeometry& g, DType type) {
  auto key = std::make_tuple(g.n, g.h, g.w, g.c, static_cast<int>(type));
  auto it = bn_cache_.find(key);
  if (it != bn_cache_.end()) return it->second;
  // With bf16 data cuDNN derives f32 statistics: the mixed-precision split PyTorch uses.
  BnDescs d{nhwc_desc(g.n, g.c, g.h, g.w, type), make_tensor_desc()};
  DP_CUDNN_CHECK(
      cudnnDeriveBNTensorDescriptor(d.stats.get(), d.data.get(), CUDNN_BATCHNORM_SPATIAL));
  if (ctx_.options.batchnorm_persistent) {
    const cudnnBatchNormMode_t mode = CUDNN_BATCHNORM_SPATIAL_PERSISTENT;
    const cudnnBatchNormOps_t ops = CUDNN_BATCHNORM_OPS_BN;
    cudnnHandle_t h = ctx_.cudnn.get();
    const cudnnTensorDescriptor_t x = d.data.get();
    // No z (residual) and no fused activation: the layers apply ReLU themselves. The size
    // queries get the descriptors PyTorch passes them (z and y described like x). They run for
    // every geometry, evaluation-only ones too (N x H x W = 1, which the persistent mode
    // refuses with BAD_PARAM): any failure means the plain calls.
    const auto supported = [](cudnnStatus_t status) { return status == CUDNN_STATUS_SUCCESS; };
    const bool sized =
        supported(cudnnGetBatchNormalizationForwardTrainingExWorkspaceSize(
            h, mode, ops, x, x, x, d.stats.get(), nullptr, &d.forward_workspace)) &&
        supported(cudnnGetBatchNormalizationBackwardExWorkspaceSize(
            h, mode, ops, x, x, x, nullptr, x, d.stats.get(), nullptr, &d.backward_workspace)) &&
        supported(cudnnGetBatchNormalizationTrainingExReserveSpaceSize(h, mode, ops, nullptr, x,
                                                                       &d.reserve));
    if (sized) d.train_mode = mode;
  }
  return bn_cache_.emplace(key, std::move(d)).first->second;
}

bool CudaBackend::batchnorm_runs_persistent(const BatchNormGeometry& g, DType type) {
  return bn_descs(g, type).train_mode == CUDNN_BATCHNORM_SPATIAL_PERSISTENT;
}

void CudaBackend::batchnorm_forward_train(const BatchNormGeometry& g, const Tensor& x,
                                          const Tensor& gamma, const Tensor& beta,
                                          Tensor& running_mean, Tensor& running_var, Tensor& y,
                                          Tensor& saved_mean, Tensor& saved_var,
                                          Tensor& workspace) {
  check_batchnorm_device_operands(g, x, {&gamma, &beta, &running_mean, &running_var});
  DP_CHECK(g.n * g.h * g.w > 1, "batchnorm training needs more than one value per channel");
  output(y, x.shape(), x.dtype());
  output(saved_mean, {g.c});
  output(saved_var, {g.c});  // holds 1/sqrt(var + eps): what cuDNN's backward takes
  BnDescs& d = bn_descs(g, x.dtype());
  const float one = 1.f, zero = 0.f;
  // cuDNN updates the running variance with the unbiased batch variance, as PyTorch does
  // (running = (1 - factor) * running + factor * batch).
  checked_launch([&] {
    cudnnStatus_t persistent = CUDNN_STATUS_NOT_SUPPORTED;
    if (d.train_mode == CUDNN_BATCHNORM_SPATIAL_PERSISTENT &&
        aligned_for_persistent_bn({&x, &y, &gamma, &beta, &running_mean, &running_var,
                                   &saved_mean, &saved_var})) {
      // The reserve space lives in the layer's workspace until backward; a non-empty workspace
      // (one byte at least) tells backward that this forward ran persistent.
      output(workspace, {static_cast<int64_t>(std::max<size_t>(d.reserve, 1))}, DType::u8);
      void* scratch = d.forward_workspace ? ctx_.workspace.get(ctx_.pool, d.forward_workspace)
                                          : nullptr;
      persistent = cudnnBatchNormalizationForwardTrainingEx(
          ctx_.cudnn.get(), d.train_mode, CUDNN_BATCHNORM_OPS_BN, &one, &zero, d.data.get(),
          x.data<void>(), nullptr, nullptr, d.data.get(), y.data<void>(), d.stats.get(),
          f(gamma), f(beta), static_cast<double>(g.momentum), f(running_mean), f(running_var),
          static_cast<double>(g.eps), f(saved_mean), f(saved_var), nullptr, scratch,
          d.forward_workspace, d.reserve ? workspace.data<void>() : nullptr, d.reserve);
      if (cudnn_not_supported(persistent))
        d.train_mode = CUDNN_BATCHNORM_SPATIAL;  // this geometry: the plain calls from now on
      else
        DP_CUDNN_CHECK(persistent);
    }
    if (persistent != CUDNN_STATUS_SUCCESS) {
      // An empty workspace: backward runs the plain call too. Emptied, not dropped: a partial
      // batch's geometry may run plain, and releasing the memory would cost the graphs.
      if (workspace.defined()) output(workspace, {0}, DType::u8);
      DP_CUDNN_CHECK(cudnnBatchNormalizationForwardTraining(
          ctx_.cudnn.get(), CUDNN_BATCHNORM_SPATIAL, &one, &zero, d.data.get(), x.data<void>(),
          d.data.get(), y.data<void>(), d.stats.get(), f(gamma), f(beta),
          static_cast<double>(g.momentum), f(running_mean), f(running_var),
          static_cast<double>(g.eps), f(saved_mean), f(saved_var)));
    }
    if (g.fuse_relu) relu_from_saved_statistics(g, x, gamma, beta, saved_mean, saved_var, y);
  });
}

void CudaBackend::batchnorm_forward_inference(const BatchNormGeometry& g, const Tensor& x,
                                              const Tensor& gamma, const Tensor& beta,
                                              const Tensor& running_mean,
                                              const Tensor& running_var, Tensor& y) {
  check_batchnorm_device_operands(g, x, {&gamma, &beta, &running_mean, &running_var});
  output(y, x.shape(), x.dtype());
  BnDescs& d = bn_descs(g, x.dtype());
  const float one = 1.f, zero = 0.f;
  checked_launch([&] {
    DP_CUDNN_CHECK(cudnnBatchNormalizationForwardInference(
        ctx_.cudnn.get(), CUDNN_BATCHNORM_SPATIAL, &one, &zero, d.data.get(), x.data<void>(),
        d.data.get(), y.data<void>(), d.stats.get(), f(gamma), f(beta), f(running_mean),
        f(running_var), static_cast<double>(g.eps)));
    if (g.fuse_relu) relu_forward(y, y);
  });
}

void CudaBackend::batchnorm_backward(const BatchNormGeometry& g, const Tensor& x, const Tensor& dy,
                                     const Tensor& gamma, const Tensor& beta,
                                     const Tensor& saved_mean, const Tensor& saved_var,
                                     const Tensor& workspace, Tensor& dx, Tensor& dgamma,
                                     Tensor& dbeta) {
  check_batchnorm_device_operands(g, x, {&gamma, &beta, &saved_mean, &saved_var});
  check_device(dy, "batchnorm_backward", "output gradient");
  DP_CHECK(dy.shape() == x.shape(), "batchnorm output gradient {} does not match input {}",
           to_string(dy.shape()), to_string(x.shape()));
  check_same_type(x, dy, "batchnorm_backward");
  output(dx, x.shape(), x.dtype());
  output(dgamma, {g.c});
  output(dbeta, {g.c});
  checked_launch([&] {
    const void* grad_in = g.fuse_relu ? relu_masked_gradient(g, x, dy, gamma, beta, saved_mean,
                                                             saved_var)
                                      : dy.data<void>();
    BnDescs& d = bn_descs(g, x.dtype());
    const float one = 1.f, zero = 0.f;
    // Persistent where the forward was (it left its reserve space in the workspace) and the
    // operands allow it; otherwise the plain call, which needs only the saved statistics.
    if (d.train_mode == CUDNN_BATCHNORM_SPATIAL_PERSISTENT && workspace.defined() &&
        workspace.bytes() > 0 &&
        aligned_for_persistent_bn({&x, &dy, &dx, &gamma, &beta, &dgamma, &dbeta})) {
      DP_CHECK(workspace.bytes() >= d.reserve,
               "batchnorm_backward: the forward's reserve space is too small");
      void* scratch = d.backward_workspace ? ctx_.workspace.get(ctx_.pool, d.backward_workspace)
                                           : nullptr;
      DP_CUDNN_CHECK(cudnnBatchNormalizationBackwardEx(
          ctx_.cudnn.get(), d.train_mode, CUDNN_BATCHNORM_OPS_BN, &one, &zero, &one, &zero,
          d.data.get(), x.data<void>(), nullptr, nullptr, d.data.get(), grad_in, nullptr,
          nullptr, d.data.get(), dx.data<void>(), d.stats.get(), f(gamma), f(beta), f(dgamma),
          f(dbeta), static_cast<double>(g.eps), f(saved_mean), f(saved_var), nullptr, scratch,
          d.backward_workspace, d.reserve ? const_cast<void*>(workspace.data<void>()) : nullptr,
          d.reserve));
      return;
    }
    DP_CUDNN_CHECK(cudnnBatchNormalizationBackward(
        ctx_.cudnn.get(), CUDNN_BATCHNORM_SPATIAL, &one, &zero, &one, &zero, d.data.get(),
        x.data<void>(), d.data.get(), grad_in, d.data.get(), dx.data<void>(), d.stats.get(),
        f(gamma), f(dgamma), f(dbeta), static_cast<double>(g.eps), f(saved_mean),
        f(saved_var)));
  });
}

void CudaBackend::relu_from_saved_statistics(const BatchNormGeometry& g, const Tensor& x,
                                             const Tensor& gamma, const Tensor& beta,
                                             const Tensor& saved_mean, const Tensor& saved_var,
                                             Tensor& y) {
  DP_CHECK(x.data<void>() != y.data<void>(), "batchnorm_forward_train: y must not alias x");
  with_activation_type(x, "batchnorm_forward_train", [&]<typename T>(ElementTag<T>) {
    kernels::bn_normalize(x.data<T>(), f(gamma), f(beta), f(saved_mean), f(saved_var), true,
                          y.data<T>(), g.n * g.h * g.w, g.c, ctx_.s());
  });
}

const void* CudaBackend::relu_masked_gradient(const BatchNormGeometry& g, const Tensor& x,
                                              const Tensor& dy, const Tensor& gamma,
                                              const Tensor& beta, const Tensor& saved_mean,
                                              const Tensor& saved_var) {
  void* masked = ctx_.activation.get(ctx_.pool, x.bytes());
  with_activation_type(x, "batchnorm_backward", [&]<typename T>(ElementTag<T>) {
    kernels::bn_relu_mask(x.data<T>(), dy.data<T>(), f(gamma), f(beta), f(saved_mean), f(saved_var),
                          static_cast<T*>(masked), g.n * g.h * g.w, g.c, ctx_.s());
  });
  return masked;
}

}  // namespace dp::cuda
