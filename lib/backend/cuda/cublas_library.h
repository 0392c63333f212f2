// cuBLAS, opened with dlopen on first use instead of linked: a linked cuBLAS runs cuBLASLt's
// static initialisers before main in every process, CPU runs and `dptrain verify` included,
// which made each start ten times slower (tests/bench/results/2026-12-05-cpu-process-start.txt).
// The backend calls cuBLAS only through cublas() below.
#pragma once

#include <cublas_v2.h>

namespace dp::cuda {

// cublasGemmEx as the library exports it (the header adds a C++ overload taking the compute
// type as a cudaDataType).
using CublasGemmEx = cublasStatus_t (*)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int,
                                        int, int, const void*, const void*, cudaDataType, int,
                                        const void*, cudaDataType, int, const void*, void*,
                                        cudaDataType, int, cublasComputeType_t, cublasGemmAlgo_t);

// The cuBLAS entry points the backend uses, resolved from the loaded library.
struct CublasApi {
  decltype(&cublasCreate_v2) create;
  decltype(&cublasDestroy_v2) destroy;
  decltype(&cublasSetStream_v2) set_stream;
  decltype(&cublasSetMathMode) set_math_mode;
  CublasGemmEx gemm_ex;
  decltype(&cublasGetStatusName) status_name;
  decltype(&cublasGetStatusString) status_string;
};

// Loads cuBLAS (the soname of the toolkit dptrain was built with, looked up as the dynamic
// linker looks up libraries, then in the folder the build found it in) once, thread-safely;
// throws dp::Error(internal) with the loader's reasons or naming a missing symbol. Later calls
// return the same table.
const CublasApi& cublas();

// UniqueHandle's destroy function for a cuBLAS handle.
inline cublasStatus_t destroy_cublas_handle(cublasHandle_t h) { return cublas().destroy(h); }

}  // namespace dp::cuda
