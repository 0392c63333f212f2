// The pooling kernels (kernels.h): global average pooling and max pooling with its argmax,
// forward and backward.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cfloat>

#include "backend/cuda/element_access.cuh"
#include "backend/cuda/grid_stride.cuh"
#include "backend/cuda/kernels.h"

namespace dp::cuda::kernels {
namespace {

template <typename T>
__global__ void avgpool_forward_kernel(const T* x, T* y, int64_t n, int64_t hw, int64_t c,
                                       float scale) {
  DP_GRID_STRIDE(i, n * c) {
    int64_t b = i / c, k = i % c;
    const T* p = x + b * hw * c + k;
    float s = 0.f;
    for (int64_t q = 0; q < hw; ++q) s += load(p[q * c]);
    y[i] = store<T>(s * scale);
  }
}

template <typename T>
__global__ void avgpool_backward_kernel(const T* dy, T* dx, int64_t n, int64_t hw, int64_t c,
                                        float scale) {
  DP_GRID_STRIDE(i, n * hw * c) {
    int64_t k = i % c, b = i / (hw * c);
    dx[i] = store<T>(load(dy[b * c + k]) * scale);
  }
}

template <typename T>
__global__ void maxpool_forward_kernel(PoolShape g, const T* x, T* y, int32_t* argmax) {
  const int64_t total = g.n * g.out_h * g.out_w * g.c;
  DP_GRID_STRIDE(i, total) {
    int64_t k = i % g.c, r = i / g.c;
    int64_t ox = r % g.out_w;
    r /= g.out_w;
    int64_t oy = r % g.out_h, b = r / g.out_h;
    float best = -FLT_MAX;
    int32_t where = -1;
    for (int64_t ky = 0; ky < g.kernel; ++ky) {
      int64_t iy = oy * g.stride - g.pad + ky;
      if (iy < 0 || iy >= g.h) continue;
      for (int64_t kx = 0; kx < g.kernel; ++kx) {
        int64_t ix = ox * g.stride - g.pad + kx;
        if (ix < 0 || ix >= g.w) continue;
        float v = load(x[((b * g.h + iy) * g.w + ix) * g.c + k]);
        // The first maximum wins, a NaN over every number (the backend's rule); padded
        // positions never take part.
        if (where < 0 || v > best || isnan(v)) {
          best = v;
          where = static_cast<int32_t>(iy * g.w + ix);
        }
      }
    }
    y[i] = store<T>(where < 0 ? 0.f : best);
    argmax[i] = where;
  }
}

template <typename T>
__global__ void maxpool_backward_kernel(PoolShape g, const T* dy, const int32_t* argmax, T* dx) {
  const int64_t total = g.n * g.h * g.w * g.c;
  DP_GRID_STRIDE(i, total) {
    int64_t k = i % g.c, r = i / g.c;
    int64_t ix = r % g.w;
    r /= g.w;
    int64_t iy = r % g.h, b = r / g.h;
    const int32_t self = static_cast<int32_t>(iy * g.w + ix);
    // Outputs whose window covers (iy, ix): oy*stride - pad <= iy < oy*stride - pad + kernel.
    int64_t oy_lo = iy + g.pad - g.kernel + 1, ox_lo = ix + g.pad - g.kernel + 1;
    oy_lo = oy_lo <= 0 ? 0 : (oy_lo + g.stride - 1) / g.stride;
    ox_lo = ox_lo <= 0 ? 0 : (ox_lo + g.stride - 1) / g.stride;
    int64_t oy_hi = (iy + g.pad) / g.stride, ox_hi = (ix + g.pad) / g.stride;
    if (oy_hi >= g.out_h) oy_hi = g.out_h - 1;
    if (ox_hi >= g.out_w) ox_hi = g.out_w - 1;
    float s = 0.f;
    for (int64_t oy = oy_lo; oy <= oy_hi; ++oy)
      for (int64_t ox = ox_lo; ox <= ox_hi; ++ox) {
        int64_t o = ((b * g.out_h + oy) * g.out_w + ox) * g.c + k;
        if (argmax[o] == self) s += load(dy[o]);
      }
    dx[i] = store<T>(s);
  }
}

}  // namespace

#define DP_POOLING_LAUNCHERS(T)                                                                    \
  void global_avgpool_forward(const T* x, T* y, int64_t n, int64_t hw, int64_t c, Stream s) {      \
    avgpool_forward_kernel<<<blocks_for(n* c), kThreads, 0, s>>>(x, y, n, hw, c,                   \
                                                                 1.f / static_cast<float>(hw));    \
  }                                                                                                \
  void global_avgpool_backward(const T* dy, T* dx, int64_t n, int64_t hw, int64_t c, Stream s) {   \
    avgpool_backward_kernel<<<blocks_for(n* hw* c), kThreads, 0, s>>>(                             \
        dy, dx, n, hw, c, 1.f / static_cast<float>(hw));                                           \
  }                                                                                                \
  void maxpool_forward(const PoolShape& g, const T* x, T* y, int32_t* argmax, Stream s) {          \
    maxpool_forward_kernel<<<blocks_for(g.n* g.out_h* g.out_w* g.c), kThreads, 0, s>>>(g, x, y,    \
                                                                                       argmax);    \
  }                                                                                                \
  void maxpool_backward(const PoolShape& g, const T* dy, const int32_t* argmax, T* dx, Stream s) { \
    maxpool_backward_kernel<<<blocks_for(g.n* g.h* g.w* g.c), kThreads, 0, s>>>(g, dy, argmax,     \
                                                                                dx);               \
  }

DP_POOLING_LAUNCHERS(float)
DP_POOLING_LAUNCHERS(bf16)
#undef DP_POOLING_LAUNCHERS

}  // namespace dp::cuda::kernels
