// CpuBackend's input augmentation: crop, flip and normalise a batch of u8 images, element for
// element the arithmetic of data::Augmenter and of the CUDA kernel.
#include "backend/cpu/cpu_backend.h"
#include "backend/cpu/openmp_threshold.h"
#include "backend/operand_checks.h"

namespace dp::cpu {

void CpuBackend::augment_batch(const AugmentSpec& spec, const Tensor& images, const Tensor& crop_yx,
                               const Tensor& flip, Tensor& out) {
  check_augment_operands(spec, images, crop_yx, flip);
  const int64_t n = images.dim(0), h = images.dim(1), w = images.dim(2), c = images.dim(3);
  out.ensure(images.shape());
  const uint8_t* in = images.data<uint8_t>();
  const int32_t* crop = crop_yx.data<int32_t>();
  const uint8_t* mirrored = flip.data<uint8_t>();
  const bool normalize = !spec.mean.empty();
  float* o = out.data();
  // Element for element the expression of data::Augmenter's table and the CUDA kernel, so all
  // three give the same bits.
#pragma omp parallel for collapse(2) if (n * h * w * c > kParallelMin)
  for (int64_t b = 0; b < n; ++b)
    for (int64_t y = 0; y < h; ++y)
      for (int64_t x = 0; x < w; ++x) {
        int64_t src_y = y + crop[2 * b] - spec.pad;
        const int64_t cropped_x = mirrored[b] ? w - 1 - x : x;
        int64_t src_x = cropped_x + crop[2 * b + 1] - spec.pad;
        if (spec.reflect) {  // data::reflect_index
          src_y = src_y < 0 ? -src_y : (src_y >= h ? 2 * (h - 1) - src_y : src_y);
          src_x = src_x < 0 ? -src_x : (src_x >= w ? 2 * (w - 1) - src_x : src_x);
        }
        const bool inside = src_y >= 0 && src_y < h && src_x >= 0 && src_x < w;
        const uint8_t* pixel = inside ? in + ((b * h + src_y) * w + src_x) * c : nullptr;
        float* dst = o + ((b * h + y) * w + x) * c;
        for (int64_t k = 0; k < c; ++k) {
          float f = static_cast<float>(pixel ? pixel[k] : 0) / 255.0f;  // padding: a zero pixel
          if (normalize) f = (f - spec.mean[k]) / spec.std[k];
          dst[k] = f;
        }
      }
}

}  // namespace dp::cpu
