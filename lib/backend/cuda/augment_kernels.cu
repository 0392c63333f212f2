// Batch augmentation on the device (kernels.h): crop with zero or reflect padding, flip and
// normalise, through augment_pixel.h's mapping, as the host Augmenter computes it.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include "backend/cuda/element_access.cuh"
#include "backend/cuda/grid_stride.cuh"
#include "backend/cuda/kernels.h"
#include "core/augment_pixel.h"

namespace dp::cuda::kernels {
namespace {

__global__ void augment_kernel(AugmentShape g, const uint8_t* images, const int32_t* crop_yx,
                               const uint8_t* flip, const float* mean, const float* std,
                               float* out) {
  DP_GRID_STRIDE(i, g.n * g.h * g.w * g.c) {
    int64_t k = i % g.c, r = i / g.c;
    int64_t x = r % g.w;
    r /= g.w;
    int64_t y = r % g.h, b = r / g.h;
    const int64_t src_y = augment::source_index(y, crop_yx[2 * b], g.pad, g.h, g.reflect);
    const int64_t cropped_x = flip[b] ? g.w - 1 - x : x;
    const int64_t src_x =
        augment::source_index(cropped_x, crop_yx[2 * b + 1], g.pad, g.w, g.reflect);
    int v = 0;  // the padding is a zero pixel
    if (src_y >= 0 && src_y < g.h && src_x >= 0 && src_x < g.w)
      v = images[((b * g.h + src_y) * g.w + src_x) * g.c + k];
    out[i] = augment::pixel_value(v, mean ? mean[k] : 0.f, mean ? std[k] : 1.f, mean != nullptr);
  }
}

}  // namespace

void augment_batch(const AugmentShape& g, const uint8_t* images, const int32_t* crop_yx,
                   const uint8_t* flip, const float* mean, const float* std, float* out, Stream s) {
  augment_kernel<<<blocks_for(g.n * g.h * g.w * g.c), kThreads, 0, s>>>(g, images, crop_yx, flip,
                                                                        mean, std, out);
}

}  // namespace dp::cuda::kernels
