#include "data/sharded_loader.h"

#include <algorithm>

#include "core/error.h"
#include "core/timer.h"

namespace dp::data {

ShardedLoader::ShardedLoader(const HDF5Dataset& dataset, IndexSource indices, LoaderOptions options)
    : dataset_(dataset),
      index_source_(std::move(indices)),
      options_(std::move(options)),
      augmenter_(options_.augment, dataset.height(), dataset.width(), dataset.channels()) {
  if (options_.batch_size < 1)
    throw UsageError(fmt::format("loader: batch size {} must be positive", options_.batch_size));
  if (options_.prefetch_depth < 2)
    throw UsageError(
        fmt::format("loader: prefetch depth {} must be at least 2", options_.prefetch_depth));
  const Shape image_shape = {options_.batch_size, dataset.height(), dataset.width(),
                             dataset.channels()};
  slots_.resize(options_.prefetch_depth);
  for (auto& slot : slots_) {
    if (options_.defer_augmentation) {
      slot.raw_images = Tensor::empty(image_shape, DType::u8);
      slot.crop_yx = Tensor::empty({options_.batch_size, 2}, DType::i32);
      slot.flip = Tensor::empty({options_.batch_size}, DType::u8);
    } else {
      slot.images = Tensor::empty(image_shape, DType::f32);
    }
    slot.labels = Tensor::empty({options_.batch_size}, DType::i32);
    slot.indices.reserve(options_.batch_size);
  }
}

ShardedLoader::~ShardedLoader() { stop_producer(); }

void ShardedLoader::stop_producer() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  changed_.notify_all();
  if (producer_.joinable()) producer_.join();
  stop_ = false;
  producer_done_ = true;
  error_ = nullptr;
  consumer_slot_ = -1;
  ready_slots_.clear();
  free_slots_.clear();
  for (int s = 0; s < static_cast<int>(slots_.size()); ++s) free_slots_.push_back(s);
}

void ShardedLoader::start_epoch(int64_t epoch) {
  stop_producer();
  std::vector<int64_t> indices = index_source_(epoch);
  const int64_t n = static_cast<int64_t>(indices.size());
  const int64_t b = options_.batch_size;
  batches_in_epoch_ = batches_for(n, b, options_.drop_last);
  samples_in_epoch_ = std::min(n, batches_in_epoch_ * b);
  indices.resize(samples_in_epoch_);
  epoch_wait_ = last_wait_ = 0;
  producer_done_ = false;
  started_ = true;
  producer_ = std::thread(&ShardedLoader::produce, this, epoch, std::move(indices));
}

void ShardedLoader::produce(int64_t epoch, std::vector<int64_t> indices) {
  try {
    std::vector<uint8_t> raw(
        options_.defer_augmentation ? 0 : options_.batch_size * dataset_.sample_bytes());
    for (int64_t k = 0; k < batches_in_epoch_; ++k) {
      const int slot_id = take_free_slot();
      if (slot_id < 0) return;  // stopped
      HostBatch& slot = slots_[slot_id];
      const int64_t first = k * options_.batch_size;
      const int64_t count = std::min<int64_t>(options_.batch_size, indices.size() - first);
      slot.indices.assign(indices.begin() + first, indices.begin() + first + count);
      slot.number = k;
      fill_slot(slot, epoch, raw);
      {
        std::lock_guard<std::mutex> lock(mutex_);
        ready_slots_.push_back(slot_id);
      }
      changed_.notify_all();
    }
  } catch (...) {
    std::lock_guard<std::mutex> lock(mutex_);
    error_ = std::current_exception();
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    producer_done_ = true;
  }
  changed_.notify_all();
}

int ShardedLoader::take_free_slot() {
  std::unique_lock<std::mutex> lock(mutex_);
  changed_.wait(lock, [&] { return stop_ || !free_slots_.empty(); });
  if (stop_) return -1;
  const int slot_id = free_slots_.front();
  free_slots_.pop_front();
  return slot_id;
}

void ShardedLoader::fill_slot(HostBatch& slot, int64_t epoch, std::vector<uint8_t>& raw) {
  const auto count = static_cast<int64_t>(slot.indices.size());
  const Shape shape{count, dataset_.height(), dataset_.width(), dataset_.channels()};
  if (options_.defer_augmentation) {
    slot.raw_images.ensure(shape, DType::u8);
    slot.crop_yx.ensure({count, 2}, DType::i32);
    slot.flip.ensure({count}, DType::u8);
    dataset_.read_images(slot.indices, slot.raw_images.data<uint8_t>());
    int32_t* crop = slot.crop_yx.data<int32_t>();
    uint8_t* flip = slot.flip.data<uint8_t>();
    for (int64_t i = 0; i < count; ++i) {
      const SampleDraw draw = draw_for_sample(options_.augment, epoch, slot.indices[i]);
      crop[2 * i] = draw.crop_y;
      crop[2 * i + 1] = draw.crop_x;
      flip[i] = draw.flip ? 1 : 0;
    }
  } else {
    slot.images.ensure(shape);
    dataset_.read_images(slot.indices, raw.data());
    augmenter_.apply_batch(raw.data(), slot.indices, epoch, slot.images.data<float>());
  }
  slot.labels.ensure({count}, DType::i32);
  const auto& labels = dataset_.labels();
  int32_t* label_out = slot.labels.data<int32_t>();
  for (int64_t i = 0; i < count; ++i) label_out[i] = labels[slot.indices[i]];
}

const HostBatch* ShardedLoader::next() {
  if (!started_) throw UsageError("loader: next() called before start_epoch()");
  const double start = now_seconds();
  std::unique_lock<std::mutex> lock(mutex_);
  if (consumer_slot_ >= 0) {
    free_slots_.push_back(consumer_slot_);
    consumer_slot_ = -1;
    changed_.notify_all();
  }
  changed_.wait(lock, [&] { return !ready_slots_.empty() || producer_done_; });
  last_wait_ = now_seconds() - start;
  epoch_wait_ += last_wait_;
  if (!ready_slots_.empty()) {
    consumer_slot_ = ready_slots_.front();
    ready_slots_.pop_front();
    return &slots_[consumer_slot_];
  }
  if (error_) std::rethrow_exception(error_);
  return nullptr;
}

}  // namespace dp::data
