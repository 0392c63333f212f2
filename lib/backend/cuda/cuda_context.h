// What every part of the CUDA backend shares: the device, its one compute stream, the cuDNN
// and cuBLAS handles bound to that stream, the caching allocator and the scratch buffers.
// All work is queued on `stream`, so scratch memory can be reused by the next queued op.
#pragma once

#include <memory>

#include "backend/cuda/cuda_handles.h"
#include "backend/cuda/device_allocator.h"
#include "backend/cuda/make_cuda_backend.h"

namespace dp::cuda {

struct CudaContext {
  explicit CudaContext(const CudaOptions& options);

  cudaStream_t s() const { return stream.get(); }

  CudaOptions options;
  // A blocking stream: the legacy default stream implicitly waits for the work queued here.
  // (The NCCL communicator orders its collectives after it with an event.)
  Stream stream;
  CudnnHandle cudnn;
  CublasHandle cublas;
  std::shared_ptr<DeviceAllocator> pool;
  ScratchBuffer workspace;      // cuDNN convolution workspace; per-channel sums' partials
  ScratchBuffer weights;        // conv / linear weights in the layout and type the library takes
  ScratchBuffer activation;     // activation-sized temporaries (masked BN gradients)
  ScratchBuffer converted;      // f32 inputs rounded to bf16 under mixed precision
};

}  // namespace dp::cuda
