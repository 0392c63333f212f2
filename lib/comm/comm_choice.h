// Resolves `--comm auto|nccl|mpi` for where the gradients live and builds the communicator the
// gradient reducer uses, saying why (for the run log), so a refused choice stops the job
// before any work with a message naming the option.
#pragma once

#include <array>
#include <memory>
#include <string>

#include "comm/communicator.h"
#include "core/option_enum.h"
#include "core/tensor.h"

struct CUstream_st;  // cudaStream_t without the CUDA headers

namespace dp {

// --comm: automatic is nccl for gradients in GPU memory, else mpi.
enum class CommRequest { automatic, nccl, mpi };
constexpr std::array<NamedValue<CommRequest>, 3> enum_names(CommRequest) {
  using R = CommRequest;
  return {{{R::automatic, "auto"}, {R::nccl, "nccl"}, {R::mpi, "mpi"}}};
}

struct CommChoice {
  std::unique_ptr<Communicator> comm;
  std::string reason;
};

// `device_stream`: the CUDA stream the gradients are produced on (GPU gradients only), which
// the communicator orders its work after. mpi with GPU gradients stages them through host
// memory (comm/host_staged_communicator.h). `collective_timeout`: --collective-timeout's
// seconds (0: none), for NCCL's own waits, which poll. Throws UsageError for nccl when the
// gradients are in host memory or the build has no NCCL.
CommChoice choose_gradient_communicator(CommRequest requested, Device gradients,
                                        CUstream_st* device_stream = nullptr,
                                        double collective_timeout = 600.0);

}  // namespace dp
