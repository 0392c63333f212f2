// CUDA graph capture for Backend::capture: the work a callback queues on the compute stream is
// recorded (stream capture), instantiated once, and replayed with a single launch. A replay
// is refused once the caching allocator has taken back any block since the capture, because
// the graph holds raw addresses; the caller then captures again.
#pragma once

#include <functional>
#include <memory>

#include "backend/backend.h"
#include "backend/cuda/cuda_handles.h"
#include "backend/cuda/device_allocator.h"

namespace dp::cuda {

class CudaGraph final : public CapturedWork {
 public:
  CudaGraph(GraphExec exec, cudaStream_t stream, std::shared_ptr<const DeviceAllocator> pool,
            uint64_t releases_at_capture)
      : exec_(std::move(exec)), stream_(stream), pool_(std::move(pool)),
        releases_(releases_at_capture) {}
  bool replay() override;

 private:
  GraphExec exec_;
  cudaStream_t stream_;
  std::shared_ptr<const DeviceAllocator> pool_;
  uint64_t releases_;
};

// Captures `work` on `stream`. Throws dp::Error when the work does something a capture cannot
// hold (a synchronisation, an allocation that reaches cudaMalloc, a host read), or when a
// block was released during the capture; the stream is out of capture mode either way.
std::unique_ptr<CapturedWork> capture_graph(cudaStream_t stream,
                                            const std::shared_ptr<DeviceAllocator>& pool,
                                            const std::function<void()>& work);

}  // namespace dp::cuda
