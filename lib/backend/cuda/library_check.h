// Check macros for cuDNN and cuBLAS (the CUDA runtime's is in cuda_check.h): a failing call
// throws dp::Error(internal) naming the call, the source location and the library's message.
#pragma once

#include <cudnn.h>

#include "backend/cuda/cublas_library.h"
#include "backend/cuda/cuda_check.h"

#define DP_CUDNN_CHECK(expr)                                                         \
  do {                                                                               \
    cudnnStatus_t dp_cudnn_status_ = (expr);                                         \
    if (dp_cudnn_status_ != CUDNN_STATUS_SUCCESS)                                    \
      ::dp::throw_library_error(::dp::ExitCode::internal, __FILE__, __LINE__, #expr, \
                                cudnnGetErrorString(dp_cudnn_status_));              \
  } while (0)

namespace dp::cuda {
// cuDNN 9 reports an unsupported configuration as CUDNN_STATUS_NOT_SUPPORTED or one of its
// sub-codes (CUDNN_STATUS_NOT_SUPPORTED_SHAPE, ...): the category tells them from failures.
inline bool cudnn_not_supported(cudnnStatus_t status) {
  return CUDNN_STATUS_CATEGORY(status) == CUDNN_STATUS_NOT_SUPPORTED;
}
}  // namespace dp::cuda

#define DP_CUBLAS_CHECK(expr)                                                           \
  do {                                                                                  \
    cublasStatus_t dp_cublas_status_ = (expr);                                          \
    if (dp_cublas_status_ != CUBLAS_STATUS_SUCCESS)                                     \
      ::dp::throw_library_error(                                                        \
          ::dp::ExitCode::internal, __FILE__, __LINE__, #expr,                          \
          ::fmt::format("{} ({})", ::dp::cuda::cublas().status_name(dp_cublas_status_), \
                        ::dp::cuda::cublas().status_string(dp_cublas_status_)));        \
  } while (0)
