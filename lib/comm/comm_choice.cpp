#include "comm/comm_choice.h"

#include "comm/host_staged_communicator.h"
#include "core/error.h"
#ifdef DPTRAIN_WITH_NCCL
#include "comm/nccl_communicator.h"
#endif

namespace dp {

CommChoice choose_gradient_communicator(CommRequest requested, Device gradients,
                                        [[maybe_unused]] CUstream_st* device_stream,
                                        [[maybe_unused]] double collective_timeout) {
  const bool on_gpu = gradients == Device::cuda;
  if (requested == CommRequest::nccl && !on_gpu)
    throw UsageError(
        "option --comm: nccl averages gradients in GPU memory, but this run keeps them in host "
        "memory (CPU backend); use --comm mpi or auto");
  if (on_gpu) {
#ifdef DPTRAIN_WITH_NCCL
    if (requested != CommRequest::mpi)
      return {make_nccl_communicator(device_stream, collective_timeout),
              "nccl (gradients in GPU memory)"};
    return {make_host_staged_communicator(make_mpi_communicator(),
                                          make_cuda_device_copier(device_stream)),
            "mpi, staged through host memory (gradients in GPU memory)"};
#else
    throw UsageError("option --comm: GPU gradients need a build with the CUDA parts");
#endif
  }
  return {make_mpi_communicator(),
          requested == CommRequest::automatic ? "mpi (auto: gradients in host memory)" : "mpi"};
}

}  // namespace dp
