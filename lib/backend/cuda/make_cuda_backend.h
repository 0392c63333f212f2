// Creating the CUDA backend, and the options it takes. Declared in every build so callers
// need no #ifdef around the type; the factory exists only when DPTRAIN_WITH_CUDA is set.
#pragma once

#include <memory>
#include <string>

#include "backend/backend.h"

namespace dp {

struct CudaOptions {
  int device = 0;  // CUDA device ordinal (a rank uses local_rank % device_count)
  // false: convolutions and GEMMs in strict FP32 (FMA); true: TF32 tensor cores, as PyTorch's
  // default for cuDNN convolutions. The tests compare against the CPU backend with false.
  bool allow_tf32 = false;
  // BF16 mixed precision: activations and their gradients in bf16, convolutions and the
  // linear layer on bf16 tensor cores accumulating in f32; parameters (the master copy),
  // gradients, BN statistics, logits, loss and optimizer stay f32.
  bool mixed_bf16 = false;
  // Only deterministic cuDNN algorithms (every own kernel is deterministic anyway).
  bool deterministic = false;
  // true: time the cuDNN algorithms once per shape (cudnnFind*Ex) and keep the fastest;
  // false: take cuDNN's heuristic choice (cudnnGet*_v7), which runs nothing.
  bool benchmark_algorithms = true;
  // With benchmark_algorithms: a file keeping the timed choices across processes (empty:
  // none); DPTRAIN_CUDNN_ALGORITHM_CACHE=FILE sets it (algorithm_cache_file.h).
  std::string algorithm_cache;
  // Training batch norm through cuDNN's Ex calls in CUDNN_BATCHNORM_SPATIAL_PERSISTENT mode,
  // PyTorch's choice for channels-last training; false: the plain SPATIAL calls, which run NCHW
  // kernels on our NHWC activations (see tests/bench/results/code-measurements-backend.md).
  // DPTRAIN_CUDNN_BN=spatial turns it off. A geometry cuDNN refuses in this mode, or a call
  // whose operands are not 16-byte aligned, runs the plain calls.
  bool batchnorm_persistent = true;
};

#ifdef DPTRAIN_WITH_CUDA
std::unique_ptr<Backend> make_cuda_backend(const CudaOptions& options);
#endif

}  // namespace dp
