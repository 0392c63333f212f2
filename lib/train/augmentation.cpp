#include "train/augmentation.h"

#include <algorithm>
#include <cstdlib>

#include "train/device_batch.h"

namespace dp {

data::AugmentConfig training_augmentation(const TrainConfig& config,
                                          const data::HDF5Dataset& train_set) {
  data::AugmentConfig augment;
  augment.random_crop = config.crop_padding > 0 || config.translate > 0;
  augment.crop_padding = config.translate > 0 ? config.translate : config.crop_padding;
  augment.reflect = config.translate > 0;
  augment.horizontal_flip = config.flip;
  augment.alternating_flip = config.alternating_flip;
  augment.normalize = config.normalize;
  augment.mean = train_set.mean();
  augment.std = train_set.std();
  augment.seed = config.seed;
  return augment;
}

data::AugmentConfig evaluation_augmentation(const EvalView& view, bool normalize,
                                            const data::HDF5Dataset& split) {
  data::AugmentConfig augment;
  augment.normalize = normalize;
  augment.mean = split.mean();
  augment.std = split.std();
  const int pad = std::max(std::abs(view.shift_y), std::abs(view.shift_x));
  augment.crop_padding = pad;
  // Offsets into the image padded by `pad`: `pad` is the unshifted window.
  augment.fixed_draw = data::SampleDraw{pad + view.shift_y, pad + view.shift_x, view.flip};
  return augment;
}

data::LoaderOptions loader_options(const data::AugmentConfig& augment, int64_t batch_size,
                                   int prefetch, bool on_backend) {
  data::LoaderOptions options;
  options.batch_size = batch_size;
  options.prefetch_depth = prefetch;
  options.augment = augment;
  options.defer_augmentation = on_backend;
  return options;
}

std::optional<AugmentSpec> backend_augmentation(const data::LoaderOptions& options) {
  if (!options.defer_augmentation) return std::nullopt;
  return augment_spec_for(options.augment);
}

}  // namespace dp
