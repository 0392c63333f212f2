#include "data/augment.h"

#include <random>

#include "core/augment_pixel.h"
#include "core/error.h"
#include "core/hash.h"
#include "data/distributed_sampler.h"

namespace dp::data {

SampleDraw draw_for_sample(const AugmentConfig& config, int64_t epoch, int64_t sample_index) {
  if (config.fixed_draw) return *config.fixed_draw;
  // (seed, epoch, index) folded into one well-spread generator seed by splitmix64's mix.
  using hash::splitmix64_mix;
  const uint64_t epoch_seed = splitmix64_mix(splitmix64_mix(config.seed) ^ uint64_t(epoch));
  std::mt19937_64 rng(splitmix64_mix(epoch_seed ^ uint64_t(sample_index)));
  const uint64_t span = 2 * uint64_t(std::max(config.crop_padding, 0)) + 1;
  SampleDraw draw;
  draw.crop_y = static_cast<int>(uniform_below(rng, span));
  draw.crop_x = static_cast<int>(uniform_below(rng, span));
  draw.flip = uniform_below(rng, 2) == 1;
  if (!config.random_crop) draw.crop_y = draw.crop_x = config.crop_padding;  // identity crop
  if (config.alternating_flip) {
    // A draw of its own, the same in every epoch: (seed, index) with a tag for this use.
    std::mt19937_64 once(splitmix64_mix(splitmix64_mix(config.seed ^ 0xa17e5f11dULL) ^
                                        uint64_t(sample_index)));
    draw.flip = (uniform_below(once, 2) == 1) != (epoch % 2 == 0);
  }
  if (!config.horizontal_flip) draw.flip = false;
  return draw;
}

Augmenter::Augmenter(const AugmentConfig& config, int64_t height, int64_t width, int64_t channels)
    : config_(config), height_(height), width_(width), channels_(channels) {
  if (config.crop_padding < 0)
    throw UsageError(fmt::format("augmentation: crop padding {} is negative", config.crop_padding));
  if (config.reflect && (config.crop_padding >= height || config.crop_padding >= width))
    throw UsageError(
        fmt::format("augmentation: reflect padding {} (--translate, or --tta 2's "
                    "shifts) needs images larger than it, got {}x{}",
                    config.crop_padding, height, width));
  if (config.normalize &&
      (int64_t(config.mean.size()) != channels || int64_t(config.std.size()) != channels))
    throw UsageError(fmt::format("augmentation: normalisation needs {} mean/std values, got {}/{}",
                                 channels, config.mean.size(), config.std.size()));
  table_.resize(channels * 256);
  pad_value_.resize(channels);
  for (int64_t c = 0; c < channels; ++c) {
    const float mean = config.normalize ? static_cast<float>(config.mean[c]) : 0.f;
    const float std = config.normalize ? static_cast<float>(config.std[c]) : 1.f;
    for (int v = 0; v < 256; ++v)
      table_[c * 256 + v] = augment::pixel_value(v, mean, std, config.normalize);
    pad_value_[c] = table_[c * 256];
  }
}

void Augmenter::apply(const uint8_t* in, const SampleDraw& draw, float* out) const {
  const int64_t pad = config_.crop_padding;
  const int64_t C = channels_;
  for (int64_t y = 0; y < height_; ++y) {
    const int64_t src_y = augment::source_index(y, draw.crop_y, pad, height_, config_.reflect);
    float* out_row = out + y * width_ * C;
    if (src_y < 0 || src_y >= height_) {
      for (int64_t x = 0; x < width_; ++x)
        for (int64_t c = 0; c < C; ++c) out_row[x * C + c] = pad_value_[c];
      continue;
    }
    const uint8_t* in_row = in + src_y * width_ * C;
    for (int64_t x = 0; x < width_; ++x) {
      // The flip mirrors the cropped image, so output column x shows cropped column W-1-x.
      const int64_t cropped_x = draw.flip ? width_ - 1 - x : x;
      const int64_t src_x =
          augment::source_index(cropped_x, draw.crop_x, pad, width_, config_.reflect);
      float* o = out_row + x * C;
      if (src_x < 0 || src_x >= width_) {
        for (int64_t c = 0; c < C; ++c) o[c] = pad_value_[c];
      } else {
        const uint8_t* p = in_row + src_x * C;
        for (int64_t c = 0; c < C; ++c) o[c] = table_[c * 256 + p[c]];
      }
    }
  }
}

void Augmenter::apply_batch(const uint8_t* in, const std::vector<int64_t>& indices, int64_t epoch,
                            float* out) const {
  const int64_t sample = height_ * width_ * channels_;
  for (size_t b = 0; b < indices.size(); ++b)
    apply(in + b * sample, draw_for_sample(config_, epoch, indices[b]), out + b * sample);
}

}  // namespace dp::data
