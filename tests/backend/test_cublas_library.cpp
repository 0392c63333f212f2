// The CUDA backend opens cuBLAS on first use (backend/cuda/cublas_library.h). Loading it and
// resolving its entry points needs no GPU, so this runs wherever the CUDA backend is built.
#include <gtest/gtest.h>

#include <string>

#include "backend/cuda/cublas_library.h"

namespace {

TEST(CublasLibrary, LoadsOnceAndResolvesEveryEntryPoint) {
  const dp::cuda::CublasApi& api = dp::cuda::cublas();
  EXPECT_EQ(&api, &dp::cuda::cublas());
  for (const void* f : {reinterpret_cast<const void*>(api.create),
                        reinterpret_cast<const void*>(api.destroy),
                        reinterpret_cast<const void*>(api.set_stream),
                        reinterpret_cast<const void*>(api.set_math_mode),
                        reinterpret_cast<const void*>(api.gemm_ex),
                        reinterpret_cast<const void*>(api.status_name),
                        reinterpret_cast<const void*>(api.status_string)})
    EXPECT_NE(f, nullptr);
  // The loaded library answers: its name for a status is the enumerator's.
  EXPECT_EQ(std::string(api.status_name(CUBLAS_STATUS_NOT_INITIALIZED)),
            "CUBLAS_STATUS_NOT_INITIALIZED");
  EXPECT_NE(std::string(api.status_string(CUBLAS_STATUS_NOT_INITIALIZED)), "");
}

}  // namespace
