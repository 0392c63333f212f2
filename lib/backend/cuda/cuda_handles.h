// RAII owners for the CUDA backend's library handles: cuDNN and cuBLAS handles and cuDNN
// descriptors, on runtime_handles.h's UniqueHandle (which also owns streams and events).
#pragma once

#include "backend/cuda/library_check.h"
#include "backend/cuda/runtime_handles.h"
#include "core/tensor.h"

namespace dp::cuda {

using CudnnHandle = UniqueHandle<cudnnHandle_t, cudnnDestroy>;
using CublasHandle = UniqueHandle<cublasHandle_t, destroy_cublas_handle>;
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

// cuDNN's name for an activation element type (f32, or bf16 under mixed precision).
inline cudnnDataType_t cudnn_type(DType type) {
  DP_CHECK(type == DType::f32 || type == DType::bf16,
           "cuDNN activations are f32 or bf16, not dtype {}", static_cast<int>(type));
  return type == DType::bf16 ? CUDNN_DATA_BFLOAT16 : CUDNN_DATA_FLOAT;
}

// An NHWC activation descriptor {n, c, h, w} (cuDNN names dimensions in NCHW order and
// takes the memory order from the format).
inline TensorDesc nhwc_desc(int64_t n, int64_t c, int64_t h, int64_t w,
                            DType type = DType::f32) {
  TensorDesc d = make_tensor_desc();
  DP_CUDNN_CHECK(cudnnSetTensor4dDescriptor(d.get(), CUDNN_TENSOR_NHWC, cudnn_type(type),
                                            static_cast<int>(n), static_cast<int>(c),
                                            static_cast<int>(h), static_cast<int>(w)));
  return d;
}

}  // namespace dp::cuda
