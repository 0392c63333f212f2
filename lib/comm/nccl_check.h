// Check macros for the CUDA runtime and NCCL: each failing call throws dp::Error with the
// call, the source location and the library's own message. DP_CUDA_CHECK is guarded so the
// CUDA backend can define the same macro (it belongs there once that backend exists).
#pragma once

#include <cuda_runtime_api.h>
#include <nccl.h>

#include "core/error.h"

#ifndef DP_CUDA_CHECK
#define DP_CUDA_CHECK(expr)                                                              \
  do {                                                                                   \
    cudaError_t dp_cuda_status_ = (expr);                                                \
    if (dp_cuda_status_ != cudaSuccess)                                                  \
      throw ::dp::Error(::dp::ExitCode::internal,                                        \
                        ::fmt::format("{}:{}: {} failed: {}", __FILE__, __LINE__, #expr, \
                                      cudaGetErrorString(dp_cuda_status_)));             \
  } while (0)
#endif

#define DP_NCCL_CHECK(expr)                                                              \
  do {                                                                                   \
    ncclResult_t dp_nccl_status_ = (expr);                                               \
    if (dp_nccl_status_ != ncclSuccess)                                                  \
      throw ::dp::Error(::dp::ExitCode::communication,                                   \
                        ::fmt::format("{}:{}: {} failed: {}", __FILE__, __LINE__, #expr, \
                                      ncclGetErrorString(dp_nccl_status_)));             \
  } while (0)
