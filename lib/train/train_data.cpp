#include "train/train_data.h"

#include <algorithm>

#include "core/error.h"
#include "train/augmentation.h"

namespace dp {

namespace {
int64_t local_batch_of(const TrainConfig& config, int world) {
  if (config.batch_size % world != 0)
    throw UsageError(fmt::format("option --batch-size: {} is not divisible by the {} ranks",
                                 config.batch_size, world));
  return config.batch_size / world;
}
}  // namespace

TrainData::TrainData(const data::HDF5Dataset& train_set, const TrainConfig& config, int world,
                     int rank, bool on_backend)
    : local_batch_(local_batch_of(config, world)),
      sampler_(train_set.size(), world, rank, config.seed) {
  const data::LoaderOptions options =
      loader_options(training_augmentation(config, train_set), local_batch_, config.prefetch,
                     on_backend);
  backend_augment_ = backend_augmentation(options);
  auto indices = [this](int64_t epoch) {
    std::vector<int64_t> mine = sampler_.indices_for_epoch(epoch);
    if (epoch == skip_epoch_)
      mine.erase(mine.begin(), mine.begin() + std::min<int64_t>(skip_samples_, mine.size()));
    return mine;
  };
  loader_ = std::make_unique<data::ShardedLoader>(train_set, indices, options);
  steps_per_epoch_ = (sampler_.num_samples() + local_batch_ - 1) / local_batch_;
  if (config.max_steps_per_epoch > 0)
    steps_per_epoch_ = std::min(steps_per_epoch_, config.max_steps_per_epoch);
}

void TrainData::skip_consumed(int64_t epoch, int64_t samples) {
  skip_epoch_ = epoch;
  skip_samples_ = samples;
}

}  // namespace dp
