#include "comm/comm_choice.h"

#include "comm/host_staged_communicator.h"
#include "core/error.h"
#ifdef DPTRAIN_WITH_NCCL
#include "comm/nccl_communicator.h"
#endif

namespace dp {

CommChoice choose_gradient_communicator(const std::string& requested, Device gradients,
                                        CUstream_st* device_stream) {
  if (requested != "auto" && requested != "nccl" && requested != "mpi")
    throw UsageError(fmt::format("option --comm: '{}' must be auto, nccl or mpi", requested));
  const bool on_gpu = gradients == Device::cuda;
  if (requested == "nccl" && !on_gpu)
    throw UsageError(
        "option --comm: nccl averages gradients in GPU memory, but this run keeps them in host "
        "memory (CPU backend); use --comm mpi or auto");
  if (on_gpu) {
#ifdef DPTRAIN_WITH_NCCL
    if (requested != "mpi")
      return {make_nccl_communicator(device_stream), "nccl (gradients in GPU memory)"};
    return {make_host_staged_communicator(make_mpi_communicator(),
                                          make_cuda_device_copier(device_stream)),
            "mpi, staged through host memory (gradients in GPU memory)"};
#else
    throw UsageError("option --comm: GPU gradients need a build with the CUDA parts");
#endif
  }
  return {make_mpi_communicator(),
          requested == "auto" ? "mpi (auto: gradients in host memory)" : "mpi"};
}

}  // namespace dp
