// CpuBackend's input augmentation: crop, flip and normalise a batch of u8 images, through the
// pixel mapping data::Augmenter and the CUDA kernel share (core/augment_pixel.h).
#include "backend/cpu/cpu_backend.h"
#include "backend/cpu/openmp_threshold.h"
#include "backend/operand_checks.h"
#include "core/augment_pixel.h"

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
#pragma omp parallel for collapse(2) if (n * h * w * c > kParallelMin)
  for (int64_t b = 0; b < n; ++b)
    for (int64_t y = 0; y < h; ++y)
      for (int64_t x = 0; x < w; ++x) {
        const int64_t src_y = augment::source_index(y, crop[2 * b], spec.pad, h, spec.reflect);
        const int64_t cropped_x = mirrored[b] ? w - 1 - x : x;
        const int64_t src_x =
            augment::source_index(cropped_x, crop[2 * b + 1], spec.pad, w, spec.reflect);
        const bool inside = src_y >= 0 && src_y < h && src_x >= 0 && src_x < w;
        const uint8_t* pixel = inside ? in + ((b * h + src_y) * w + src_x) * c : nullptr;
        float* dst = o + ((b * h + y) * w + x) * c;
        for (int64_t k = 0; k < c; ++k)
          dst[k] = augment::pixel_value(pixel ? pixel[k] : 0, normalize ? spec.mean[k] : 0.f,
                                        normalize ? spec.std[k] : 1.f, normalize);
      }
}

}  // namespace dp::cpu
