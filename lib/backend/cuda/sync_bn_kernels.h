// Launchers for the CUDA backend's batch norm in four pieces (backend.h, "batch norm over
// several ranks' batches") and its per-channel sum, which a convolution's bias gradient takes
// too, on NHWC activations of c channels and rows = n*h*w pixels, f32 or bf16 (arithmetic in
// f32, per-channel tensors f32). Every reduction is deterministic and coalesced: each block
// sums a fixed range of rows in a fixed order into `partial` (f32 {chunks, terms, c},
// chunks = channel_sum_chunks(rows)), and one thread per channel adds the chunks in order, in
// double. The fused ReLU's mask is x * scale + shift > 0 with scale = gamma * invstd and
// shift = beta - mean * scale, each rounded as written (no FMA contraction), in forward and
// backward alike, so backward masks exactly what forward zeroed: bn_normalize's relu and
// bn_relu_mask (the cuDNN batch norm's fused ReLU applies both to cuDNN's saved statistics).
#pragma once

#include <cstdint>

#include "backend/cuda/kernels.h"

namespace dp::cuda::kernels {

int64_t channel_sum_chunks(int64_t rows);

// sum[k] = the sum over rows of x[r, k] (one term). mean = per-channel mean; m2 = sum of
// (x - mean)^2 (two passes over x).
#define DP_SYNC_BN_LAUNCHERS(T)                                                                  \
  void channel_sum(const T* x, int64_t rows, int64_t c, float* partial, float* sum, Stream s);   \
  void bn_local_moments(const T* x, int64_t rows, int64_t c, float* partial, float* mean,        \
                        float* m2, Stream s);                                                    \
  void bn_normalize(const T* x, const float* gamma, const float* beta, const float* mean,        \
                    const float* invstd, bool relu, T* y, int64_t rows, int64_t c, Stream s);    \
  void bn_backward_sums(const T* x, const T* dy, const float* gamma, const float* beta,          \
                        const float* mean, const float* invstd, bool relu, int64_t rows,         \
                        int64_t c, float* partial, float* sum_dy, float* sum_dy_xhat, Stream s); \
  void bn_backward_input(const T* x, const T* dy, const float* gamma, const float* beta,         \
                         const float* mean, const float* invstd, const float* mean_dy,           \
                         const float* mean_dy_xhat, bool relu, T* dx, int64_t rows, int64_t c,   \
                         Stream s);                                                              \
  /* out = dy where the fused ReLU's map of x is > 0, else 0: the gradient entering the norm */  \
  void bn_relu_mask(const T* x, const T* dy, const float* gamma, const float* beta,              \
                    const float* mean, const float* invstd, T* out, int64_t rows, int64_t c,     \
                    Stream s);
DP_SYNC_BN_LAUNCHERS(float)
DP_SYNC_BN_LAUNCHERS(bf16)
#undef DP_SYNC_BN_LAUNCHERS

}  // namespace dp::cuda::kernels
