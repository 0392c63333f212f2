// CudaBackend's convolution ops: operand checks, the activation type, then CudnnConv
// (cudnn_conv.cpp) for the forward and both backward passes.
#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/cuda_operands.h"

namespace dp::cuda {

void CudaBackend::conv2d_forward(const Conv2dGeometry& g, const Tensor& x, const Tensor& w,
                                 Tensor& y) {
  check_device(x, "conv2d_forward", "input");
  check_device(w, "conv2d_forward", "weight");
  check_conv_operands(g, x, w, nullptr);
  const DType type = activation_dtype();
  const Tensor input = as_activation(x);
  output(y, {g.n, g.out_h(), g.out_w(), g.c_out}, type);
  conv_.forward(g, type, input.data<void>(), f(w), y.data<void>());
}

void CudaBackend::conv2d_backward(const Conv2dGeometry& g, const Tensor& x, const Tensor& w,
                                  const Tensor& dy, Tensor* dx, Tensor& dw) {
  check_device(x, "conv2d_backward", "input");
  check_device(w, "conv2d_backward", "weight");
  check_device(dy, "conv2d_backward", "output gradient");
  check_conv_operands(g, x, w, &dy);
  const DType type = activation_dtype();
  DP_CHECK(dy.dtype() == type, "conv output gradient is not in the activation type");
  if (dx) {
    output(*dx, x.shape(), type);
    conv_.backward_data(g, type, f(w), dy.data<void>(), dx->data<void>());
  }
  output(dw, w.shape());
  const Tensor input = as_activation(x);
  conv_.backward_filter(g, type, input.data<void>(), dy.data<void>(), f(dw));
}

}  // namespace dp::cuda
