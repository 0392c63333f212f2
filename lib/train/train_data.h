// This rank's training data: the distributed sampler's shard of each epoch, read and augmented
// by the sharded loader. Every rank takes the same number of steps: the sampler pads shards to
// equal length, and a last partial batch is kept (as PyTorch's DataLoader does by default),
// or dropped with --drop-last.
// The sampler's order and each sample's augmentation depend on (seed, epoch, sample index)
// alone, so dropping the consumed prefix of a resumed epoch reproduces its remaining batches
// exactly; the prefix is counted in positions of the epoch's order (steps x global batch),
// so the rest of the epoch re-splits over another number of ranks as well.
#pragma once

#include <memory>
#include <optional>

#include "backend/backend.h"
#include "data/distributed_sampler.h"
#include "data/hdf5_dataset.h"
#include "data/sharded_loader.h"
#include "train/config.h"

namespace dp {

class TrainData {
 public:
  // `train_set` must outlive this. `on_backend`: the backend augments (--augment-on).
  TrainData(const data::HDF5Dataset& train_set, const TrainConfig& config, int world, int rank,
            bool on_backend);
  // The loader's index source holds `this`: built in place, never moved.
  TrainData(const TrainData&) = delete;
  TrainData& operator=(const TrainData&) = delete;

  data::ShardedLoader& loader() { return *loader_; }
  int64_t local_batch() const { return local_batch_; }
  // Whole epochs' steps, or --max-steps-per-epoch where smaller.
  int64_t steps_per_epoch() const { return steps_per_epoch_; }
  // The loader's augmentation when the backend runs it, else empty.
  const std::optional<AugmentSpec>& backend_augment() const { return backend_augment_; }
  // Epoch index `epoch` (0-based) resumes after the first `consumed` positions of its order
  // (steps done x global batch, on whatever number of ranks took them): see
  // DistributedSampler::remaining_indices.
  void resume_epoch(int64_t epoch, int64_t consumed);

 private:
  int64_t local_batch_;
  data::DistributedSampler sampler_;
  std::optional<AugmentSpec> backend_augment_;
  std::unique_ptr<data::ShardedLoader> loader_;
  int64_t resume_epoch_ = -1, resume_consumed_ = 0;
  int64_t steps_per_epoch_ = 0;
};

}  // namespace dp
