// Feeds one rank its batches: a background thread reads this rank's samples of the epoch
// (HDF5Dataset::read_images: only those rows), augments them and fills a bounded ring of reusable
// host batches, so reading overlaps compute and no memory is allocated per step.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "core/tensor.h"
#include "data/augment.h"
#include "data/hdf5_dataset.h"

namespace dp::data {

struct HostBatch {
  // Augmented on the host: f32 {B, H, W, C}; B < batch size for a last partial batch.
  // Undefined when the loader defers augmentation to the backend (then the three below are set).
  Tensor images;
  Tensor raw_images;             // u8 {B, H, W, C}: the stored pixels
  Tensor crop_yx;                // i32 {B, 2}: each sample's crop offsets (SampleDraw)
  Tensor flip;                   // u8 {B}: 1 where the sample is mirrored
  Tensor labels;                 // i32 {B}
  std::vector<int64_t> indices;  // dataset indices of the samples, in batch order
  int64_t number = 0;            // position of this batch within the epoch
  int64_t size() const { return labels.dim(0); }
};

// The batches an epoch of `samples` makes of `batch` each: the last partial one kept, or
// dropped with drop_last (DataLoader's drop_last).
inline int64_t batches_for(int64_t samples, int64_t batch, bool drop_last) {
  return drop_last ? samples / batch : (samples + batch - 1) / batch;
}

struct LoaderOptions {
  int64_t batch_size = 128;
  int prefetch_depth = 2;  // host batches in flight; at least 2 so reading overlaps compute
  bool drop_last = false;  // drop a last partial batch (the trainer decides; off by default)
  AugmentConfig augment;
  // Hand out the raw pixels and the per-sample draws instead of augmented images, for
  // Backend::augment_batch on the device: a quarter of the bytes to copy, no host pixel work.
  bool defer_augmentation = false;
};

// This rank's sample indices for an epoch, e.g. DistributedSampler::indices_for_epoch or a
// fixed eval_shard_indices list.
using IndexSource = std::function<std::vector<int64_t>(int64_t epoch)>;

class ShardedLoader {
 public:
  // `dataset` must outlive the loader. Throws UsageError for a bad batch size / depth.
  ShardedLoader(const HDF5Dataset& dataset, IndexSource indices, LoaderOptions options);
  ~ShardedLoader();  // stops the producer even when the epoch was not consumed to the end
  ShardedLoader(const ShardedLoader&) = delete;
  ShardedLoader& operator=(const ShardedLoader&) = delete;

  // Abandons any unfinished epoch and starts producing epoch `epoch`.
  void start_epoch(int64_t epoch);
  // The next batch of the current epoch, or nullptr after its last batch. Blocks until the
  // batch is ready; rethrows an error from the reading thread. The batch stays valid until
  // the next call of next() or start_epoch().
  const HostBatch* next();

  int64_t batches_in_epoch() const { return batches_in_epoch_; }
  int64_t samples_in_epoch() const { return samples_in_epoch_; }
  // Time next() spent waiting for data: the last call, and the sum since start_epoch.
  double last_wait_seconds() const { return last_wait_; }
  double epoch_wait_seconds() const { return epoch_wait_; }

 private:
  // The producer thread: fills a free slot with each batch of `indices` in turn.
  void produce(int64_t epoch, std::vector<int64_t> indices);
  int take_free_slot();  // waits for one; -1 once stopped
  // Reads (and augments, or draws the augmentation of) the rows slot.indices into `slot`;
  // `raw` is the producer's staging buffer for augmenting on the host.
  void fill_slot(HostBatch& slot, int64_t epoch, std::vector<uint8_t>& raw);
  void stop_producer();

  const HDF5Dataset& dataset_;
  IndexSource index_source_;
  LoaderOptions options_;
  Augmenter augmenter_;

  std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<HostBatch> slots_;
  std::deque<int> free_slots_, ready_slots_;
  int consumer_slot_ = -1;  // slot handed out by the last next()
  bool stop_ = false;
  bool producer_done_ = true;
  bool started_ = false;
  std::exception_ptr error_;
  std::thread producer_;

  int64_t batches_in_epoch_ = 0, samples_in_epoch_ = 0;
  double last_wait_ = 0, epoch_wait_ = 0;
};

}  // namespace dp::data
