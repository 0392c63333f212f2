// Asks the CUDA runtime (when built in) how many GPUs this process can use, so
// `--device auto` picks CUDA where a GPU exists and the CPU backend everywhere else.
#pragma once

#include <string>

namespace dp {

struct CudaProbe {
  int device_count = 0;
  std::string reason;  // why no GPU is usable, when device_count == 0
};

CudaProbe probe_cuda();

}  // namespace dp
