// What the host Augmenter makes of a batch of u8 images under given per-sample draws, with the
// draws also in Backend::augment_batch's form: the reference the backends' augmentation is
// held to (tests/train/test_device_batch.cpp, tests/backend/test_cuda_vs_cpu.cpp).
#pragma once

#include <vector>

#include "core/tensor.h"
#include "data/augment.h"

namespace dp::data::testing {

struct AugmentedOnHost {
  Tensor crop_yx;   // i32 {N, 2}
  Tensor flip;      // u8 {N}
  Tensor expected;  // f32 {N, H, W, C}: Augmenter::apply of each image
};

inline AugmentedOnHost augment_on_host(const AugmentConfig& config, const Tensor& images,
                                       const std::vector<SampleDraw>& draws) {
  const int64_t n = images.dim(0), h = images.dim(1), w = images.dim(2), c = images.dim(3);
  const int64_t sample = h * w * c;
  const Augmenter augmenter(config, h, w, c);
  AugmentedOnHost r{Tensor::empty({n, 2}, DType::i32), Tensor::empty({n}, DType::u8),
                    Tensor::empty(images.shape())};
  for (int64_t b = 0; b < n; ++b) {
    r.crop_yx.data<int32_t>()[2 * b] = draws[b].crop_y;
    r.crop_yx.data<int32_t>()[2 * b + 1] = draws[b].crop_x;
    r.flip.data<uint8_t>()[b] = draws[b].flip ? 1 : 0;
    augmenter.apply(images.data<uint8_t>() + b * sample, draws[b], r.expected.data() + b * sample);
  }
  return r;
}

}  // namespace dp::data::testing
