// The CUDA runtime's check macro: a failing call throws dp::Error(internal) naming the call,
// the source location and CUDA's own message. Kept free of cuDNN/cuBLAS so users that need
// only the runtime (the NCCL communicator) can include it.
#pragma once

#include <cuda_runtime_api.h>

#include "core/error.h"

#define DP_CUDA_CHECK(expr)                                                              \
  do {                                                                                   \
    cudaError_t dp_cuda_status_ = (expr);                                                \
    if (dp_cuda_status_ != cudaSuccess)                                                  \
      throw ::dp::Error(::dp::ExitCode::internal,                                        \
                        ::fmt::format("{}:{}: {} failed: {}", __FILE__, __LINE__, #expr, \
                                      cudaGetErrorString(dp_cuda_status_)));             \
  } while (0)
