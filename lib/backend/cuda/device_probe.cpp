#include "backend/cuda/device_probe.h"

#ifdef DPTRAIN_WITH_CUDA
#include <cuda_runtime_api.h>
#endif

namespace dp {

CudaProbe probe_cuda() {
  CudaProbe probe;
#ifdef DPTRAIN_WITH_CUDA
  int count = 0;
  cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess) {
    probe.reason = cudaGetErrorString(status);
    return probe;
  }
  probe.device_count = count;
  if (count == 0) probe.reason = "no CUDA device";
#else
  probe.reason = "built without CUDA";
#endif
  return probe;
}

}  // namespace dp
