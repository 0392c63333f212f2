// Element access in float whatever the stored type, for the .cu files: bf16 widens exactly,
// and rounds to nearest even on the way back.
#pragma once

#include <cuda_bf16.h>

#include <cstdint>

#include "backend/cuda/kernels.h"

namespace dp::cuda::kernels {

__device__ __forceinline__ float load(float v) { return v; }
__device__ __forceinline__ float load(bf16 v) {
  return __uint_as_float(static_cast<uint32_t>(v.bits) << 16);
}
template <typename T>
__host__ __device__ __forceinline__ T store(float v);
template <>
__host__ __device__ __forceinline__ float store<float>(float v) {
  return v;
}
template <>
__host__ __device__ __forceinline__ bf16 store<bf16>(float v) {
  // A NaN as the CPU backend (core/bf16.h) and PyTorch's BFloat16 write it, 0x7fc0; the
  // hardware conversion gives 0x7fff.
  if (isnan(v)) return bf16{0x7fc0};
  return bf16{__bfloat16_as_ushort(__float2bfloat16_rn(v))};
}

}  // namespace dp::cuda::kernels
