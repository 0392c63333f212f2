// CudaBackend's pooling ops on the backend's own kernels: max pooling (argmax workspace) and
// global average pooling, each in the activation element type.
#include "backend/cuda/checked_launch.h"
#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/cuda_operands.h"

namespace dp::cuda {
namespace {

kernels::PoolShape pool_shape(const PoolGeometry& g) {
  return {g.n, g.h, g.w, g.c, g.out_h(), g.out_w(), g.kernel, g.stride, g.pad};
}

}  // namespace

void CudaBackend::maxpool_forward(const PoolGeometry& g, const Tensor& x, Tensor& y,
                                  Tensor& workspace) {
  check_pool_input(g, x, "maxpool_forward");
  check_device(x, "maxpool_forward", "input");
  const kernels::PoolShape p = pool_shape(g);
  output(y, {g.n, g.out_h(), g.out_w(), g.c}, x.dtype());
  output(workspace, y.shape(), DType::i32);  // argmax per output
  checked_launch(x, "maxpool_forward", [&]<typename T>(ElementTag<T>) {
    kernels::maxpool_forward(p, x.data<T>(), y.data<T>(), workspace.data<int32_t>(), ctx_.s());
  });
}

void CudaBackend::maxpool_backward(const PoolGeometry& g, const Tensor& dy, const Tensor& workspace,
                                   Tensor& dx) {
  check_pool_output_gradient(g, dy, "maxpool_backward");
  check_device(dy, "maxpool_backward", "output gradient");
  const kernels::PoolShape p = pool_shape(g);
  DP_CHECK(workspace.defined() && workspace.device() == Device::cuda &&
               workspace.dtype() == DType::i32 && workspace.numel() == dy.numel(),
           "maxpool workspace {}: the forward must run first", to_string(workspace.shape()));
  output(dx, {g.n, g.h, g.w, g.c}, dy.dtype());
  checked_launch(dy, "maxpool_backward", [&]<typename T>(ElementTag<T>) {
    kernels::maxpool_backward(p, dy.data<T>(), workspace.data<int32_t>(), dx.data<T>(), ctx_.s());
  });
}

void CudaBackend::global_avgpool_forward(const Tensor& x, Tensor& y) {
  check_global_avgpool_forward(x);
  check_device(x, "global_avgpool_forward", "input");
  const int64_t n = x.dim(0), hw = x.dim(1) * x.dim(2), c = x.dim(3);
  output(y, {n, c}, x.dtype());
  checked_launch(x, "global_avgpool_forward", [&]<typename T>(ElementTag<T>) {
    kernels::global_avgpool_forward(x.data<T>(), y.data<T>(), n, hw, c, ctx_.s());
  });
}

void CudaBackend::global_avgpool_backward(const Tensor& dy, Tensor& dx) {
  check_global_avgpool_backward(dy, dx);
  check_device(dy, "global_avgpool_backward", "output gradient");
  const Shape shape = dx.shape();
  output(dx, shape, dy.dtype());
  checked_launch(dy, "global_avgpool_backward", [&]<typename T>(ElementTag<T>) {
    kernels::global_avgpool_backward(dy.data<T>(), dx.data<T>(), shape[0], shape[1] * shape[2],
                                     shape[3], ctx_.s());
  });
}

}  // namespace dp::cuda
