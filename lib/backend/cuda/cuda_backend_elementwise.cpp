// CudaBackend's elementwise activation ops (ReLU, residual add + ReLU, gradient accumulation,
// GELU, scale, a conv's channel bias) on the backend's own kernels, each in the activation
// element type (the bias and its gradient f32).
#include "backend/cuda/checked_launch.h"
#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/cuda_operands.h"
#include "backend/cuda/sync_bn_kernels.h"

namespace dp::cuda {

void CudaBackend::relu_forward(const Tensor& x, Tensor& y) {
  check_device(x, "relu_forward", "input");
  output(y, x.shape(), x.dtype());
  checked_launch(x, "relu_forward", [&]<typename T>(ElementTag<T>) {
    kernels::relu_forward(x.data<T>(), y.data<T>(), x.numel(), ctx_.s());
  });
}

void CudaBackend::relu_backward(const Tensor& y, const Tensor& dy, Tensor& dx) {
  check_same_numel(y, dy, "relu_backward");
  check_device(y, "relu_backward", "output");
  check_device(dy, "relu_backward", "output gradient");
  check_same_type(y, dy, "relu_backward");
  output(dx, dy.shape(), dy.dtype());
  checked_launch(y, "relu_backward", [&]<typename T>(ElementTag<T>) {
    kernels::relu_backward(y.data<T>(), dy.data<T>(), dx.data<T>(), y.numel(), ctx_.s());
  });
}

void CudaBackend::add_relu_forward(const Tensor& a, const Tensor& b, Tensor& y) {
  check_same_numel(a, b, "add_relu_forward");
  check_device(a, "add_relu_forward", "first input");
  check_device(b, "add_relu_forward", "second input");
  check_same_type(a, b, "add_relu_forward");
  output(y, a.shape(), a.dtype());
  checked_launch(a, "add_relu_forward", [&]<typename T>(ElementTag<T>) {
    kernels::add_relu_forward(a.data<T>(), b.data<T>(), y.data<T>(), a.numel(), ctx_.s());
  });
}

void CudaBackend::add_relu_backward(const Tensor& y, const Tensor& dy, Tensor& dx) {
  relu_backward(y, dy, dx);  // the same mask reaches both branches
}

void CudaBackend::accumulate(const Tensor& x, Tensor& y) {
  check_same_numel(x, y, "accumulate");
  check_device(x, "accumulate", "input");
  check_device(y, "accumulate", "output");
  check_same_type(x, y, "accumulate");
  checked_launch(x, "accumulate", [&]<typename T>(ElementTag<T>) {
    kernels::accumulate(x.data<T>(), y.data<T>(), x.numel(), ctx_.s());
  });
}

void CudaBackend::accumulate_relu_backward(const Tensor& x, const Tensor& relu_output, Tensor& y) {
  check_same_numel(x, y, "accumulate_relu_backward");
  check_same_numel(relu_output, y, "accumulate_relu_backward mask");
  check_device(x, "accumulate_relu_backward", "input");
  check_device(relu_output, "accumulate_relu_backward", "ReLU output");
  check_device(y, "accumulate_relu_backward", "output");
  check_same_type(x, y, "accumulate_relu_backward");
  check_same_type(relu_output, y, "accumulate_relu_backward mask");
  checked_launch(x, "accumulate_relu_backward", [&]<typename T>(ElementTag<T>) {
    kernels::accumulate_relu_backward(x.data<T>(), relu_output.data<T>(), y.data<T>(), x.numel(),
                                      ctx_.s());
  });
}

void CudaBackend::gelu_forward(const Tensor& x, Tensor& y) {
  check_device(x, "gelu_forward", "input");
  output(y, x.shape(), x.dtype());
  checked_launch(x, "gelu_forward", [&]<typename T>(ElementTag<T>) {
    kernels::gelu_forward(x.data<T>(), y.data<T>(), x.numel(), ctx_.s());
  });
}

void CudaBackend::gelu_backward(const Tensor& x, const Tensor& dy, Tensor& dx) {
  check_same_numel(x, dy, "gelu_backward");
  check_device(x, "gelu_backward", "input");
  check_device(dy, "gelu_backward", "output gradient");
  check_same_type(x, dy, "gelu_backward");
  output(dx, x.shape(), x.dtype());
  checked_launch(x, "gelu_backward", [&]<typename T>(ElementTag<T>) {
    kernels::gelu_backward(x.data<T>(), dy.data<T>(), dx.data<T>(), x.numel(), ctx_.s());
  });
}

void CudaBackend::scale(const Tensor& x, float alpha, Tensor& y) {
  check_device(x, "scale", "input");
  if (&y != &x) output(y, x.shape(), x.dtype());
  checked_launch(x, "scale", [&]<typename T>(ElementTag<T>) {
    kernels::scale(x.data<T>(), alpha, y.data<T>(), x.numel(), ctx_.s());
  });
}

void CudaBackend::channel_bias_forward(const Tensor& b, Tensor& y) {
  check_device(b, "channel_bias_forward", "bias");
  check_device(y, "channel_bias_forward", "activation");
  DP_CHECK(y.rank() == 4 && b.dtype() == DType::f32 && b.numel() == y.dim(3),
           "channel_bias_forward: activation {} and bias {} disagree", to_string(y.shape()),
           to_string(b.shape()));
  const int64_t c = y.dim(3), rows = y.numel() / c;
  checked_launch(y, "channel_bias_forward", [&]<typename T>(ElementTag<T>) {
    kernels::channel_bias_forward(f(b), y.data<T>(), rows, c, ctx_.s());
  });
}

void CudaBackend::channel_bias_backward(const Tensor& dy, Tensor& db) {
  check_device(dy, "channel_bias_backward", "output gradient");
  DP_CHECK(dy.rank() == 4, "channel_bias_backward expects {{N,H,W,C}}, got {}",
           to_string(dy.shape()));
  const int64_t c = dy.dim(3), rows = dy.numel() / c;
  output(db, {c});
  checked_launch(dy, "channel_bias_backward", [&]<typename T>(ElementTag<T>) {
    kernels::channel_sum(dy.data<T>(), rows, c, channel_partials(rows, c, 1), f(db), ctx_.s());
  });
}

}  // namespace dp::cuda
