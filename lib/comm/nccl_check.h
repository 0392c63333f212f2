// NCCL's check macro: each failing call throws dp::Error(communication) with the call, the
// source location and NCCL's own message. DP_CUDA_CHECK comes from the CUDA backend.
#pragma once

#include <nccl.h>

#include "backend/cuda/cuda_check.h"
#include "core/error.h"

#define DP_NCCL_CHECK(expr)                                                               \
  do {                                                                                    \
    ncclResult_t dp_nccl_status_ = (expr);                                                \
    if (dp_nccl_status_ != ncclSuccess)                                                   \
      ::dp::throw_library_error(::dp::ExitCode::communication, __FILE__, __LINE__, #expr, \
                                ncclGetErrorString(dp_nccl_status_));                     \
  } while (0)
