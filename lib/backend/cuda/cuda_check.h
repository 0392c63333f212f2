// The CUDA runtime's check macro: a failing call throws dp::Error(internal) naming the call,
// the source location and CUDA's own message. Kept free of cuDNN/cuBLAS so users that need
// only the runtime (the NCCL communicator) can include it.
#pragma once

#include <cuda_runtime_api.h>

#include "core/error.h"

namespace dp {

// What DP_CUDA_CHECK throws for `call` failing with `status` at file:line (also used by
// checked_launch.h, which names its caller's line instead of its own).
[[noreturn]] inline void throw_cuda_error(cudaError_t status, const char* file, int line,
                                          const char* call) {
  throw_library_error(ExitCode::internal, file, line, call, cudaGetErrorString(status));
}

}  // namespace dp

#define DP_CUDA_CHECK(expr)                                                              \
  do {                                                                                   \
    cudaError_t dp_cuda_status_ = (expr);                                                \
    if (dp_cuda_status_ != cudaSuccess)                                                  \
      ::dp::throw_cuda_error(dp_cuda_status_, __FILE__, __LINE__, #expr);                \
  } while (0)
