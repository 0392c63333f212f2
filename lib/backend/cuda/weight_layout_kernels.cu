// The convolution weights' layout transposes (kernels.h): OIHW (the model's) to and from
// OHWI (cuDNN's NHWC filters), converting the element type on the way.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include "backend/cuda/element_access.cuh"
#include "backend/cuda/grid_stride.cuh"
#include "backend/cuda/kernels.h"

namespace dp::cuda::kernels {
namespace {

template <typename From, typename To>
__global__ void oihw_to_ohwi_kernel(const From* src, To* dst, int64_t o, int64_t in, int64_t hw) {
  DP_GRID_STRIDE(t, o * in * hw) {
    // t indexes dst {O, HW, I}
    int64_t i = t % in, r = t / in;
    int64_t p = r % hw, q = r / hw;
    dst[t] = store<To>(load(src[(q * in + i) * hw + p]));
  }
}

template <typename From, typename To>
__global__ void ohwi_to_oihw_kernel(const From* src, To* dst, int64_t o, int64_t in, int64_t hw) {
  DP_GRID_STRIDE(t, o * in * hw) {
    // t indexes dst {O, I, HW}
    int64_t p = t % hw, r = t / hw;
    int64_t i = r % in, q = r / in;
    dst[t] = store<To>(load(src[(q * hw + p) * in + i]));
  }
}

}  // namespace

#define DP_WEIGHT_LAYOUT_LAUNCHERS(T)                                                       \
  void oihw_to_ohwi(const float* src, T* dst, int64_t o, int64_t i, int64_t hw, Stream s) { \
    oihw_to_ohwi_kernel<<<blocks_for(o* i* hw), kThreads, 0, s>>>(src, dst, o, i, hw);      \
  }                                                                                         \
  void ohwi_to_oihw(const T* src, float* dst, int64_t o, int64_t i, int64_t hw, Stream s) { \
    ohwi_to_oihw_kernel<<<blocks_for(o* i* hw), kThreads, 0, s>>>(src, dst, o, i, hw);      \
  }

DP_WEIGHT_LAYOUT_LAUNCHERS(float)
DP_WEIGHT_LAYOUT_LAUNCHERS(bf16)
#undef DP_WEIGHT_LAYOUT_LAUNCHERS

}  // namespace dp::cuda::kernels
