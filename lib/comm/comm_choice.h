// Resolves `--comm auto|nccl|mpi` for where the gradients live and builds the communicator the
// gradient reducer uses, saying why (for the run log), so a refused choice stops the job
// before any work with a message naming the option.
#pragma once

#include <memory>
#include <string>

#include "comm/communicator.h"
#include "core/tensor.h"

namespace dp {

struct CommChoice {
  std::unique_ptr<Communicator> comm;
  std::string reason;
};

// Throws UsageError for an unknown value, for nccl when the gradients are in host memory or
// the build has no NCCL, and for mpi with GPU gradients (host staging is not built yet).
CommChoice choose_gradient_communicator(const std::string& requested, Device gradients);

}  // namespace dp
