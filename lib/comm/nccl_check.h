// NCCL's check macro: each failing call throws dp::Error(communication) with the call, the
// source location and NCCL's own message. DP_CUDA_CHECK comes from the CUDA backend.
#pragma once

#include <nccl.h>

#include <string>

#include "backend/cuda/cuda_check.h"
#include "core/error.h"

namespace dp {

// NCCL's name for the status, and the detail NCCL recorded for its last error where there is
// one (for ncclInvalidUsage at init, say, "Duplicate GPU detected : rank 1 and rank 0 both on
// CUDA device 1000": two ranks given one GPU). The detail may come from an earlier failed
// call, as NCCL documents; it is shown as NCCL's.
inline std::string nccl_reason(ncclResult_t status) {
  std::string reason = ncclGetErrorString(status);
  const char* detail = ncclGetLastError(nullptr);
  if (detail != nullptr && *detail != '\0') reason += fmt::format(" (NCCL: {})", detail);
  return reason;
}

}  // namespace dp

#define DP_NCCL_CHECK(expr)                                                               \
  do {                                                                                    \
    ncclResult_t dp_nccl_status_ = (expr);                                                \
    if (dp_nccl_status_ != ncclSuccess)                                                   \
      ::dp::throw_library_error(::dp::ExitCode::communication, __FILE__, __LINE__, #expr, \
                                ::dp::nccl_reason(dp_nccl_status_));                      \
  } while (0)
