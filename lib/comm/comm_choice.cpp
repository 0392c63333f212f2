#include "comm/comm_choice.h"

#include "core/error.h"
#ifdef DPTRAIN_WITH_NCCL
#include "comm/nccl_communicator.h"
#endif

namespace dp {

CommChoice choose_gradient_communicator(const std::string& requested, Device gradients) {
  if (requested != "auto" && requested != "nccl" && requested != "mpi")
    throw UsageError(fmt::format("option --comm: '{}' must be auto, nccl or mpi", requested));
  const bool on_gpu = gradients == Device::cuda;
  if (requested == "nccl" && !on_gpu)
    throw UsageError(
        "option --comm: nccl averages gradients in GPU memory, but this run keeps them in host "
        "memory (CPU backend); use --comm mpi or auto");
  if (on_gpu) {
#ifdef DPTRAIN_WITH_NCCL
    if (requested != "mpi") return {make_nccl_communicator(), "nccl (gradients in GPU memory)"};
#else
    if (requested == "nccl")
      throw UsageError("option --comm: nccl is not available: this build has no NCCL");
#endif
    throw UsageError(
        "option --comm: mpi with gradients in GPU memory needs host staging, which is not "
        "built yet; use --comm nccl");
  }
  return {make_mpi_communicator(),
          requested == "auto" ? "mpi (auto: gradients in host memory)" : "mpi"};
}

}  // namespace dp
