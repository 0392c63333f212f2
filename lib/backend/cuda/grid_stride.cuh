// The launch shape the CUDA backend's own kernels share: blocks of kThreads threads in
// grid-stride loops over flat buffers.
#pragma once

#include <cstdint>

namespace dp::cuda::kernels {

constexpr int kThreads = 256;

// Enough blocks to fill an H100 many times over, never more than needed (grid-stride loops
// cover the rest).
inline int blocks_for(int64_t n) {
  int64_t b = (n + kThreads - 1) / kThreads;
  if (b > 65535) b = 65535;
  return static_cast<int>(b < 1 ? 1 : b);
}

}  // namespace dp::cuda::kernels

#define DP_GRID_STRIDE(i, n)                                                \
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < (n); \
       i += int64_t(blockDim.x) * gridDim.x)
