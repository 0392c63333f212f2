// The option-A shortcut's kernels (kernels.h): subsample by the stride and pad the channels
// with zeros, and the gradient's inverse.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include "backend/cuda/element_access.cuh"
#include "backend/cuda/grid_stride.cuh"
#include "backend/cuda/kernels.h"

namespace dp::cuda::kernels {
namespace {

// Copies only (no arithmetic), so bf16 values pass through unchanged.
template <typename T>
__global__ void subsample_pad_forward_kernel(SubsamplePadShape g, const T* x, T* y) {
  DP_GRID_STRIDE(i, g.n * g.out_h * g.out_w * g.c_out) {
    const int64_t k = i % g.c_out, pixel = i / g.c_out;
    const int64_t ox = pixel % g.out_w, oy = (pixel / g.out_w) % g.out_h;
    const int64_t b = pixel / (g.out_w * g.out_h);
    y[i] = k < g.c_in ? x[((b * g.h + oy * g.stride) * g.w + ox * g.stride) * g.c_in + k]
                      : store<T>(0.f);
  }
}

template <typename T>
__global__ void subsample_pad_backward_kernel(SubsamplePadShape g, const T* dy, T* dx) {
  DP_GRID_STRIDE(i, g.n * g.h * g.w * g.c_in) {
    const int64_t k = i % g.c_in, pixel = i / g.c_in;
    const int64_t x = pixel % g.w, y = (pixel / g.w) % g.h, b = pixel / (g.w * g.h);
    const bool read = y % g.stride == 0 && x % g.stride == 0;
    dx[i] = read ? dy[((b * g.out_h + y / g.stride) * g.out_w + x / g.stride) * g.c_out + k]
                 : store<T>(0.f);
  }
}

}  // namespace

#define DP_SHORTCUT_LAUNCHERS(T)                                                                  \
  void subsample_pad_forward(const SubsamplePadShape& g, const T* x, T* y, Stream s) {            \
    subsample_pad_forward_kernel<<<blocks_for(g.n* g.out_h* g.out_w* g.c_out), kThreads, 0, s>>>( \
        g, x, y);                                                                                 \
  }                                                                                               \
  void subsample_pad_backward(const SubsamplePadShape& g, const T* dy, T* dx, Stream s) {         \
    subsample_pad_backward_kernel<<<blocks_for(g.n* g.h* g.w* g.c_in), kThreads, 0, s>>>(g, dy,   \
                                                                                         dx);     \
  }

DP_SHORTCUT_LAUNCHERS(float)
DP_SHORTCUT_LAUNCHERS(bf16)
#undef DP_SHORTCUT_LAUNCHERS

}  // namespace dp::cuda::kernels
