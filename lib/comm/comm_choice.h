// Resolves `--comm auto|nccl|mpi` for where the gradients live and builds the communicator the
// gradient reducer uses, saying why (for the run log), so a refused choice stops the job
// before any work with a message naming the option.
#pragma once

#include <memory>
#include <string>

#include "comm/communicator.h"
#include "core/tensor.h"

struct CUstream_st;  // cudaStream_t without the CUDA headers

namespace dp {

struct CommChoice {
  std::unique_ptr<Communicator> comm;
  std::string reason;
};

// `device_stream`: the CUDA stream the gradients are produced on (GPU gradients only), which
// the communicator orders its work after. mpi with GPU gradients stages them through host
// memory (comm/host_staged_communicator.h). Throws UsageError for an unknown value, and for
// nccl when the gradients are in host memory or the build has no NCCL.
CommChoice choose_gradient_communicator(const std::string& requested, Device gradients,
                                        CUstream_st* device_stream = nullptr);

}  // namespace dp
