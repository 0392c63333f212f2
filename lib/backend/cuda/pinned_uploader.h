// The CUDA backend's BatchUploader: each batch is copied into pinned (page-locked) host memory
// and from there to the device by DMA on a copy stream of its own, so the transfer runs at
// full bus speed and alongside the compute stream's work (the previous step's optimizer and
// gradient reduction); the compute stream waits on an event, never the host.
//
// Two slots, used in turn, each with its pinned buffer, device buffer and two events:
// `copied` (recorded on the copy stream after the transfer; the compute stream waits on it)
// and `released` (recorded on the compute stream when the slot's batch is superseded, and
// again when the slot takes a new device block, which queued compute work may still read; the
// next transfer into the slot waits on it, so it never overwrites data still being read).
#pragma once

#include <array>
#include <memory>

#include "backend/batch_uploader.h"
#include "backend/cuda/cuda_handles.h"
#include "backend/cuda/device_allocator.h"

namespace dp::cuda {

class PinnedUploader final : public BatchUploader {
 public:
  PinnedUploader(std::shared_ptr<DeviceAllocator> pool, cudaStream_t compute);
  ~PinnedUploader() override;
  const Tensor& upload(const Tensor& host) override;

 private:
  struct Slot {
    std::shared_ptr<void> pinned;  // cudaMallocHost, freed by cudaFreeHost
    size_t pinned_bytes = 0;
    std::shared_ptr<void> device;  // from the backend's caching allocator
    size_t device_bytes = 0;
    Tensor tensor;                 // view of `device` with the batch's shape and dtype
    Event copied, released;
    bool in_use = false;
  };

  std::shared_ptr<DeviceAllocator> pool_;
  cudaStream_t compute_;
  Stream copy_stream_;
  std::array<Slot, 2> slots_;
  int current_ = -1;  // the slot of the latest upload
};

}  // namespace dp::cuda
