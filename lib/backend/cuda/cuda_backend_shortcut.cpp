// CudaBackend's option-A shortcut (Backend::subsample_pad_*) on the backend's own kernels, in
// the activation element type; CUDA activations are always NHWC.
#include "backend/cuda/checked_launch.h"
#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/cuda_operands.h"

namespace dp::cuda {
namespace {

kernels::SubsamplePadShape shape_of(const SubsamplePadGeometry& g) {
  return {g.n, g.h, g.w, g.c_in, g.out_h(), g.out_w(), g.c_out, g.stride};
}

}  // namespace

void CudaBackend::subsample_pad_forward(const SubsamplePadGeometry& g, const Tensor& x,
                                        Tensor& y) {
  check_subsample_pad_input(g, x, "subsample_pad_forward");
  check_device(x, "subsample_pad_forward", "input");
  output(y, {g.n, g.out_h(), g.out_w(), g.c_out}, x.dtype());
  checked_launch(x, "subsample_pad_forward", [&]<typename T>(ElementTag<T>) {
    kernels::subsample_pad_forward(shape_of(g), x.data<T>(), y.data<T>(), ctx_.s());
  });
}

void CudaBackend::subsample_pad_backward(const SubsamplePadGeometry& g, const Tensor& dy,
                                         Tensor& dx) {
  check_subsample_pad_output_gradient(g, dy, "subsample_pad_backward");
  check_device(dy, "subsample_pad_backward", "output gradient");
  output(dx, {g.n, g.h, g.w, g.c_in}, dy.dtype());
  checked_launch(dy, "subsample_pad_backward", [&]<typename T>(ElementTag<T>) {
    kernels::subsample_pad_backward(shape_of(g), dy.data<T>(), dx.data<T>(), ctx_.s());
  });
}

}  // namespace dp::cuda
