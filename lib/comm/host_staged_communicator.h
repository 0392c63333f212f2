// MPI collectives on buffers in device memory, through host copies: every call copies the
// device buffer into a host staging buffer, runs the host communicator (MPI) on it, and copies
// the result back. Two PCIe copies per collective make it slower than NCCL, but it needs
// nothing but MPI: it is `--comm mpi` with GPU gradients, and it lets N ranks share one GPU
// (NCCL refuses two ranks on one device), which is how the multi-rank GPU path is tested on a
// single-GPU machine.
#pragma once

#include <cstddef>
#include <memory>

#include "comm/communicator.h"

struct CUstream_st;  // cudaStream_t without the CUDA headers

namespace dp {

// Moves bytes between device memory and host memory. Both calls return once the copy is
// complete; to_host's copy is ordered after the device work already queued (which produces
// the bytes), to_device's before any device work queued later (which consumes them).
class DeviceCopier {
 public:
  virtual ~DeviceCopier() = default;
  virtual void to_host(const void* device, void* host, size_t bytes) = 0;
  virtual void to_device(const void* host, void* device, size_t bytes) = 0;
};

// `host` runs the collectives (an MPI communicator); `copier` stages the data. Staging buffers
// are kept per device address, so the gradient buckets of every step reuse the same ones.
std::unique_ptr<Communicator> make_host_staged_communicator(std::unique_ptr<Communicator> host,
                                                            std::unique_ptr<DeviceCopier> copier);

#ifdef DPTRAIN_WITH_NCCL
// cudaMemcpyAsync on `stream` (the stream the data is produced and consumed on; nullptr: the
// legacy default stream) followed by a wait for that stream.
std::unique_ptr<DeviceCopier> make_cuda_device_copier(CUstream_st* stream);
#endif

}  // namespace dp
