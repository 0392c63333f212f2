// The owner of one NCCL communicator handle. Its destructor aborts the communicator: abort
// never blocks, and after an error the peers may be gone. A clean end calls destroy_after(),
// which lets the last collectives finish first.
#pragma once

#include <cuda_runtime_api.h>
#include <nccl.h>

#include <utility>

namespace dp {

class NcclComm {
 public:
  NcclComm() = default;
  ~NcclComm() { abort(); }
  NcclComm(const NcclComm&) = delete;
  NcclComm& operator=(const NcclComm&) = delete;

  ncclComm_t get() const { return comm_; }
  ncclComm_t* out() { return &comm_; }  // for ncclCommInitRank*, while empty
  // Results ignored: this runs on error paths and at exit.
  void abort() {
    if (comm_ != nullptr) (void)ncclCommAbort(std::exchange(comm_, nullptr));
  }
  // Waits for `stream`'s work (the communicator's collectives), then destroys the handle.
  // No ncclCommFinalize first: ncclCommDestroy finalizes a communicator that was not.
  void destroy_after(cudaStream_t stream) {
    if (comm_ == nullptr) return;
    (void)cudaStreamSynchronize(stream);
    (void)ncclCommDestroy(std::exchange(comm_, nullptr));
  }

 private:
  ncclComm_t comm_ = nullptr;
};

}  // namespace dp
