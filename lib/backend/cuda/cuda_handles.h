// RAII owners for the CUDA backend's handles: stream, events, cuDNN and cuBLAS handles and
// cuDNN descriptors. Each is move-only and destroys its handle exactly once; destructors
// ignore errors (they may run while an exception unwinds or after the runtime shut down).
#pragma once

#include <utility>

#include "backend/cuda/library_check.h"

namespace dp::cuda {

// One owner type for every create/destroy pair of the C APIs.
template <typename H, auto Destroy>
class UniqueHandle {
 public:
  UniqueHandle() = default;
  explicit UniqueHandle(H h) : h_(h) {}
  ~UniqueHandle() { reset(); }
  UniqueHandle(UniqueHandle&& o) noexcept : h_(std::exchange(o.h_, H{})) {}
  UniqueHandle& operator=(UniqueHandle&& o) noexcept {
    if (this != &o) {
      reset();
      h_ = std::exchange(o.h_, H{});
    }
    return *this;
  }
  UniqueHandle(const UniqueHandle&) = delete;
  UniqueHandle& operator=(const UniqueHandle&) = delete;
  H get() const { return h_; }
  void reset() {
    if (h_) (void)Destroy(h_);
    h_ = H{};
  }

 private:
  H h_{};
};

using Stream = UniqueHandle<cudaStream_t, cudaStreamDestroy>;
using Event = UniqueHandle<cudaEvent_t, cudaEventDestroy>;
using CudnnHandle = UniqueHandle<cudnnHandle_t, cudnnDestroy>;
using CublasHandle = UniqueHandle<cublasHandle_t, cublasDestroy>;
using TensorDesc = UniqueHandle<cudnnTensorDescriptor_t, cudnnDestroyTensorDescriptor>;
using FilterDesc = UniqueHandle<cudnnFilterDescriptor_t, cudnnDestroyFilterDescriptor>;
using ConvDesc = UniqueHandle<cudnnConvolutionDescriptor_t, cudnnDestroyConvolutionDescriptor>;

inline TensorDesc make_tensor_desc() {
  cudnnTensorDescriptor_t d;
  DP_CUDNN_CHECK(cudnnCreateTensorDescriptor(&d));
  return TensorDesc(d);
}
inline FilterDesc make_filter_desc() {
  cudnnFilterDescriptor_t d;
  DP_CUDNN_CHECK(cudnnCreateFilterDescriptor(&d));
  return FilterDesc(d);
}
inline ConvDesc make_conv_desc() {
  cudnnConvolutionDescriptor_t d;
  DP_CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&d));
  return ConvDesc(d);
}

// An NHWC f32 activation descriptor {n, c, h, w} (cuDNN names dimensions in NCHW order and
// takes the memory order from the format).
inline TensorDesc nhwc_desc(int64_t n, int64_t c, int64_t h, int64_t w) {
  TensorDesc d = make_tensor_desc();
  DP_CUDNN_CHECK(cudnnSetTensor4dDescriptor(d.get(), CUDNN_TENSOR_NHWC, CUDNN_DATA_FLOAT,
                                            static_cast<int>(n), static_cast<int>(c),
                                            static_cast<int>(h), static_cast<int>(w)));
  return d;
}

}  // namespace dp::cuda
