// Host-side augmentation, uint8 (N,H,W,C) -> float (N,H,W,C), matching torchvision's
//   RandomCrop(H, padding=p) -> RandomHorizontalFlip(0.5) -> ToTensor -> Normalize(mean, std)
// i.e. padded pixels are 0 in uint8 space, so after normalisation they are (0 - mean) / std.
// Random draws for a sample come from a generator seeded by (seed, epoch, dataset index of
// the sample), so the output does not depend on threads, batch boundaries or rank count.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

namespace dp::data {

// The random decisions for one sample. Always drawn in the same order (dy, dx, flip) whatever
// is enabled, so switching one augmentation off does not change the others' draws.
struct SampleDraw {
  int crop_y = 0, crop_x = 0;  // offsets into the padded image, in [0, 2 * padding]
  bool flip = false;
};

struct AugmentConfig {
  bool random_crop = false;
  int crop_padding = 4;
  // Pad by reflection (F.pad(mode='reflect'), --translate) instead of zero pixels.
  bool reflect = false;
  bool horizontal_flip = false;
  // With horizontal_flip: each sample's flip drawn once from (seed, sample index), then
  // inverted in every even 0-based `epoch` (the 1st, 3rd, ... of the run; airbench94's
  // "alternating flip": one epoch flips a random half, the next the other half, ...).
  bool alternating_flip = false;
  bool normalize = true;
  std::vector<double> mean, std;  // per channel, [0, 1] units; required when normalize
  uint64_t seed = 0;
  // The same draw for every sample instead of random ones (an evaluation view: a fixed shift
  // within crop_padding and/or a mirror).
  std::optional<SampleDraw> fixed_draw;
};

SampleDraw draw_for_sample(const AugmentConfig& config, int64_t epoch, int64_t sample_index);

// Applies the enabled augmentations to whole batches; holds the per-channel lookup table
// uint8 -> normalised float so the inner loop is a table lookup.
class Augmenter {
 public:
  Augmenter(const AugmentConfig& config, int64_t height, int64_t width, int64_t channels);

  // One image: `in` is (H,W,C) uint8, `out` (H,W,C) float.
  void apply(const uint8_t* in, const SampleDraw& draw, float* out) const;
  // A batch whose sample b is dataset sample indices[b].
  void apply_batch(const uint8_t* in, const std::vector<int64_t>& indices, int64_t epoch,
                   float* out) const;
  const AugmentConfig& config() const { return config_; }

 private:
  AugmentConfig config_;
  int64_t height_, width_, channels_;
  std::vector<float> table_;      // [c * 256 + v] -> (v / 255 - mean[c]) / std[c]
  std::vector<float> pad_value_;  // per channel: table_ at v = 0
};

}  // namespace dp::data
