#include "backend/cuda/pinned_uploader.h"

#include <cstring>

namespace dp::cuda {
namespace {

std::shared_ptr<void> pinned_block(size_t bytes) {
  void* p = nullptr;
  DP_CUDA_CHECK(cudaMallocHost(&p, bytes));
  return std::shared_ptr<void>(p, [](void* q) { (void)cudaFreeHost(q); });
}

}  // namespace

PinnedUploader::PinnedUploader(std::shared_ptr<DeviceAllocator> pool, cudaStream_t compute)
    : pool_(std::move(pool)), compute_(compute) {
  // Non-blocking: the copy stream must not wait for work on the legacy default stream.
  copy_stream_ = make_nonblocking_stream();
  for (Slot& slot : slots_) {
    slot.copied = make_sync_event();
    slot.released = make_sync_event();
  }
}

PinnedUploader::~PinnedUploader() {
  // Transfers still queued read the pinned buffers freed below.
  (void)cudaStreamSynchronize(copy_stream_.get());
}

const Tensor& PinnedUploader::upload(const Tensor& host) {
  DP_CHECK(host.device() == Device::cpu, "upload: the source must be a host tensor");
  // Everything that reads the current batch is queued by now: mark where it ends.
  if (current_ >= 0) DP_CUDA_CHECK(cudaEventRecord(slots_[current_].released.get(), compute_));
  current_ = (current_ + 1) % 2;
  Slot& slot = slots_[current_];
  const size_t bytes = host.bytes();
  if (slot.in_use) {
    // The slot's previous transfer must have left the pinned buffer before it is refilled
    // (it finished long ago: the batch in between has been computed on).
    DP_CUDA_CHECK(cudaEventSynchronize(slot.copied.get()));
    // ...and the device buffer may only be overwritten once its batch's work is done.
    DP_CUDA_CHECK(cudaStreamWaitEvent(copy_stream_.get(), slot.released.get(), 0));
  }
  if (slot.pinned_bytes < bytes) {
    slot.pinned = pinned_block(bytes);
    slot.pinned_bytes = bytes;
  }
  if (slot.device_bytes < bytes) {
    slot.device = DeviceAllocator::allocate(pool_, bytes);
    slot.device_bytes = bytes;
    // The pool reuses a block once its host owner is gone, which orders reuse on the compute
    // stream only: work queued there may still read this block, so the copy waits for it.
    DP_CUDA_CHECK(cudaEventRecord(slot.released.get(), compute_));
    DP_CUDA_CHECK(cudaStreamWaitEvent(copy_stream_.get(), slot.released.get(), 0));
  }
  std::memcpy(slot.pinned.get(), host.data<void>(), bytes);
  DP_CUDA_CHECK(cudaMemcpyAsync(slot.device.get(), slot.pinned.get(), bytes,
                                cudaMemcpyHostToDevice, copy_stream_.get()));
  DP_CUDA_CHECK(cudaEventRecord(slot.copied.get(), copy_stream_.get()));
  DP_CUDA_CHECK(cudaStreamWaitEvent(compute_, slot.copied.get(), 0));
  slot.in_use = true;
  slot.tensor = Tensor::view(slot.device.get(), host.shape(), host.dtype(), Device::cuda,
                             slot.device);
  return slot.tensor;
}

}  // namespace dp::cuda
