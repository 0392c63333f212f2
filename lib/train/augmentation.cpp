#include "train/augmentation.h"

#include <algorithm>
#include <cstdlib>

#include "core/error.h"
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
  augment.reflect = view.reflect && pad > 0;
  // Offsets into the image padded by `pad`: `pad` is the unshifted window.
  augment.fixed_draw = data::SampleDraw{pad + view.shift_y, pad + view.shift_x, view.flip};
  return augment;
}

std::vector<EvalView> tta_views(int level) {
  if (level == 0) return {EvalView{}};
  // Weights in proportion (powers of two: weighting rounds nothing): 1, 1; 2, 2, 1, 1, 1, 1.
  const std::vector<EvalView> level1 = {EvalView{0, 0, false, false, 1.0f},
                                        EvalView{0, 0, true, false, 1.0f}};
  if (level == 1) return level1;
  if (level != 2) throw UsageError(fmt::format("option --tta: {} is not 0, 1 or 2", level));
  std::vector<EvalView> views = level1;
  for (EvalView& view : views) view.weight = 2.0f;
  for (int shift : {-1, 1})
    for (bool flip : {false, true}) views.push_back(EvalView{shift, shift, flip, true, 1.0f});
  return views;
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
