#include "train/train_data.h"

#include <algorithm>

#include "comm/agreed_verdict.h"
#include "core/error.h"
#include "train/augmentation.h"

namespace dp {

namespace {
// Both refusals below depend on the options and the world size only, the same on every rank:
// one verdict, rank 0's line (throw_agreed_verdict).
int64_t local_batch_of(const TrainConfig& config, int world) {
  if (config.batch_size % world != 0)
    throw_agreed_verdict(UsageError(fmt::format(
        "option --batch-size: {} is not divisible by the {} ranks", config.batch_size, world)));
  return config.batch_size / world;
}
}  // namespace

TrainData::TrainData(const data::HDF5Dataset& train_set, const TrainConfig& config, int world,
                     int rank, bool on_backend)
    : local_batch_(local_batch_of(config, world)),
      sampler_(train_set.size(), world, rank, config.seed) {
  data::LoaderOptions options =
      loader_options(training_augmentation(config, train_set), local_batch_, config.prefetch,
                     on_backend);
  options.drop_last = config.drop_last;
  backend_augment_ = backend_augmentation(options);
  auto indices = [this](int64_t epoch) {
    return sampler_.remaining_indices(epoch, epoch == resume_epoch_ ? resume_consumed_ : 0);
  };
  loader_ = std::make_unique<data::ShardedLoader>(train_set, indices, options);
  // ceil(ceil(size / world) / (batch / world)) = ceil(size / batch): the same on any number of
  // ranks, which a mid-epoch resume on another world size relies on.
  // With --drop-last floor(ceil(size / world) / (batch / world)) steps.
  steps_per_epoch_ = data::batches_for(sampler_.num_samples(), local_batch_, config.drop_last);
  if (steps_per_epoch_ < 1)
    throw_agreed_verdict(
        UsageError(fmt::format("option --drop-last: {} samples per rank make no batch of {}",
                               sampler_.num_samples(), local_batch_)));
  if (config.max_steps_per_epoch > 0)
    steps_per_epoch_ = std::min(steps_per_epoch_, config.max_steps_per_epoch);
}

void TrainData::resume_epoch(int64_t epoch, int64_t consumed) {
  resume_epoch_ = epoch;
  resume_consumed_ = consumed;
}

}  // namespace dp
