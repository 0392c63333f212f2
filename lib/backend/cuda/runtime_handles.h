// RAII owners for CUDA runtime handles (streams, events, graphs, device memory), free of cuDNN
// and cuBLAS so the NCCL communicator can use them too (cuda_handles.h adds the libraries'
// handles). Each is move-only and destroys its handle exactly once; destructors ignore errors
// (they may run while an exception unwinds or after the runtime shut down).
#pragma once

#include <cstddef>
#include <utility>

#include "backend/cuda/cuda_check.h"

namespace dp::cuda {

// One owner type for every create/destroy pair of the C APIs.
template <typename H, auto Destroy>
class UniqueHandle {
 public:
  UniqueHandle() = default;
  explicit UniqueHandle(H h) : h_(h) {}
  ~UniqueHandle() { reset(); }
  UniqueHandle(UniqueHandle&& o) noexcept : h_(std::exchange(o.h_, H{})) {}
  UniqueHandle& operator=(UniqueHandle&& o) noexcept {
    if (this != &o) {
      reset();
      h_ = std::exchange(o.h_, H{});
    }
    return *this;
  }
  UniqueHandle(const UniqueHandle&) = delete;
  UniqueHandle& operator=(const UniqueHandle&) = delete;
  H get() const { return h_; }
  void reset() {
    if (h_) (void)Destroy(h_);
    h_ = H{};
  }

 private:
  H h_{};
};

using Stream = UniqueHandle<cudaStream_t, cudaStreamDestroy>;
using Event = UniqueHandle<cudaEvent_t, cudaEventDestroy>;
using Graph = UniqueHandle<cudaGraph_t, cudaGraphDestroy>;
using GraphExec = UniqueHandle<cudaGraphExec_t, cudaGraphExecDestroy>;
template <typename T>
using DeviceArray = UniqueHandle<T*, cudaFree>;

// A stream that does not wait for work on the legacy default stream (nor it for this one).
inline Stream make_nonblocking_stream() {
  cudaStream_t s;
  DP_CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  return Stream(s);
}

// An event for ordering and completion only (no timing, so recording it is cheaper).
inline Event make_sync_event() {
  cudaEvent_t e;
  DP_CUDA_CHECK(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
  return Event(e);
}

template <typename T>
DeviceArray<T> make_device_array(size_t count) {
  void* p = nullptr;
  DP_CUDA_CHECK(cudaMalloc(&p, count * sizeof(T)));
  return DeviceArray<T>(static_cast<T*>(p));
}

}  // namespace dp::cuda
