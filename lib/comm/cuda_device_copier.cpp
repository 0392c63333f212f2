// The host-staged communicator's copies for CUDA device memory (built with the CUDA parts).
#include <cuda_runtime.h>

#include "backend/cuda/cuda_check.h"
#include "comm/host_staged_communicator.h"

namespace dp {

namespace {

// Copies on the stream that produces and consumes the data, so no event is needed: the copy
// to the host runs after the backward kernels queued before it, and the copy back is complete
// before the optimizer's kernels, queued later on the same stream, read it.
class CudaDeviceCopier : public DeviceCopier {
 public:
  explicit CudaDeviceCopier(cudaStream_t stream) : stream_(stream) {}
  void to_host(const void* device, void* host, size_t bytes) override {
    DP_CUDA_CHECK(cudaMemcpyAsync(host, device, bytes, cudaMemcpyDeviceToHost, stream_));
    DP_CUDA_CHECK(cudaStreamSynchronize(stream_));
  }
  void to_device(const void* host, void* device, size_t bytes) override {
    DP_CUDA_CHECK(cudaMemcpyAsync(device, host, bytes, cudaMemcpyHostToDevice, stream_));
    // The host buffer may be reused as soon as this returns.
    DP_CUDA_CHECK(cudaStreamSynchronize(stream_));
  }

 private:
  cudaStream_t stream_;
};

}  // namespace

std::unique_ptr<DeviceCopier> make_cuda_device_copier(CUstream_st* stream) {
  return std::make_unique<CudaDeviceCopier>(stream);
}

}  // namespace dp
