// DP_HOST_DEVICE: marks a function that the host code and the CUDA kernels share (one
// definition of arithmetic that both backends must compute alike).
#pragma once

#ifdef __CUDACC__
#define DP_HOST_DEVICE __host__ __device__
#else
#define DP_HOST_DEVICE
#endif
