// The CUDA backend's batch norm in four pieces (sync_bn_kernels.h): per-channel partial sums
// over fixed row chunks, finished in double in chunk order, and two elementwise kernels.
#include <cuda_runtime.h>

#include "backend/cuda/element_access.cuh"
#include "backend/cuda/grid_stride.cuh"
#include "backend/cuda/sync_bn_kernels.h"

namespace dp::cuda::kernels {
namespace {

// A block sums kTile channels (threadIdx.x) over its chunk of rows, kLanes rows at a time
// (threadIdx.y): consecutive threads read consecutive channels of one pixel (coalesced).
constexpr int kTile = 32, kLanes = 8;
constexpr int64_t kMaxChunks = 256, kRowsPerChunk = 512;
// The fused ReLU's affine map of channel k, rounded as written (see sync_bn_kernels.h).
struct Affine {
  const float *gamma, *beta, *mean, *invstd;
  __device__ float scale(int64_t k) const { return __fmul_rn(gamma[k], invstd[k]); }
  __device__ float value(float x, int64_t k) const {
    const float a = scale(k);
    const float shift = __fsub_rn(beta[k], __fmul_rn(mean[k], a));
    return __fadd_rn(__fmul_rn(x, a), shift);
  }
};

// The terms a partial-sum kernel adds per element: the value; its squared deviation from the
// mean; the (masked) gradient and gradient times xhat.
template <typename T>
struct SumOf {
  static constexpr int kTerms = 1;
  const T* x;
  __device__ void add(int64_t i, int64_t, float* acc) const { acc[0] += load(x[i]); }
};
template <typename T>
struct SquaredDeviation {
  static constexpr int kTerms = 1;
  const T* x;
  const float* mean;
  __device__ void add(int64_t i, int64_t k, float* acc) const {
    const float d = load(x[i]) - mean[k];
    acc[0] += d * d;
  }
};
template <typename T>
struct GradientSums {
  static constexpr int kTerms = 2;
  const T *x, *dy;
  Affine affine;
  bool relu;
  __device__ void add(int64_t i, int64_t k, float* acc) const {
    const float xv = load(x[i]);
    const float d = relu && !(affine.value(xv, k) > 0.f) ? 0.f : load(dy[i]);
    acc[0] += d;
    acc[1] += d * ((xv - affine.mean[k]) * affine.invstd[k]);
  }
};

// partial[(chunk * kTerms + t) * c + k]: term t of channel k over chunk blockIdx.y's rows.
template <typename Term>
__global__ void partial_sums_kernel(Term term, int64_t rows, int64_t c, float* partial) {
  constexpr int Q = Term::kTerms;
  __shared__ float lanes[Q][kLanes][kTile + 1];
  const int64_t k = blockIdx.x * int64_t(kTile) + threadIdx.x;
  const int64_t chunks = gridDim.y;
  const int64_t begin = rows * blockIdx.y / chunks, end = rows * (blockIdx.y + 1) / chunks;
  float acc[Q] = {};
  if (k < c)
    for (int64_t r = begin + threadIdx.y; r < end; r += kLanes) term.add(r * c + k, k, acc);
  for (int q = 0; q < Q; ++q) lanes[q][threadIdx.y][threadIdx.x] = acc[q];
  __syncthreads();
  if (threadIdx.y != 0 || k >= c) return;
  for (int q = 0; q < Q; ++q) {
    float s = 0.f;
    for (int l = 0; l < kLanes; ++l) s += lanes[q][l][threadIdx.x];
    partial[(blockIdx.y * int64_t(Q) + q) * c + k] = s;
  }
}

// out_t[k] = scale * sum over chunks of partial term t, for t = 0 (and 1 where out1).
__global__ void finish_sums_kernel(const float* partial, int64_t chunks, int terms, int64_t c,
                                   double scale, float* out0, float* out1) {
  for (int64_t k = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; k < c;
       k += int64_t(blockDim.x) * gridDim.x) {
    double s0 = 0, s1 = 0;
    for (int64_t j = 0; j < chunks; ++j) {
      s0 += partial[(j * terms) * c + k];
      if (out1) s1 += partial[(j * terms + 1) * c + k];
    }
    out0[k] = static_cast<float>(s0 * scale);
    if (out1) out1[k] = static_cast<float>(s1 * scale);
  }
}

template <typename Term>
void channel_sums(const Term& term, int64_t rows, int64_t c, float* partial, double scale,
                  float* out0, float* out1, Stream s) {
  const int64_t chunks = channel_sum_chunks(rows);
  const dim3 grid(static_cast<unsigned>((c + kTile - 1) / kTile), static_cast<unsigned>(chunks));
  partial_sums_kernel<<<grid, dim3(kTile, kLanes), 0, s>>>(term, rows, c, partial);
  finish_sums_kernel<<<blocks_for(c), kThreads, 0, s>>>(partial, chunks, Term::kTerms, c, scale,
                                                        out0, out1);
}

template <typename T>
__global__ void normalize_kernel(const T* x, Affine affine, bool relu, T* y, int64_t n, int64_t c) {
  DP_GRID_STRIDE(i, n) {
    const float v = affine.value(load(x[i]), i % c);
    y[i] = store<T>(relu && !(v > 0.f) ? 0.f : v);
  }
}

template <typename T>
__global__ void backward_input_kernel(const T* x, const T* dy, Affine affine, const float* mean_dy,
                                      const float* mean_dy_xhat, bool relu, T* dx, int64_t n,
                                      int64_t c) {
  DP_GRID_STRIDE(i, n) {
    const int64_t k = i % c;
    const float xv = load(x[i]);
    const float d = relu && !(affine.value(xv, k) > 0.f) ? 0.f : load(dy[i]);
    const float xhat = (xv - affine.mean[k]) * affine.invstd[k];
    dx[i] = store<T>(affine.scale(k) * (d - mean_dy[k] - xhat * mean_dy_xhat[k]));
  }
}

template <typename T>
__global__ void relu_mask_kernel(const T* x, const T* dy, Affine affine, T* out, int64_t n,
                                 int64_t c) {
  DP_GRID_STRIDE(i, n) out[i] = affine.value(load(x[i]), i % c) > 0.f ? dy[i] : store<T>(0.f);
}

}  // namespace

int64_t channel_sum_chunks(int64_t rows) {
  const int64_t chunks = (rows + kRowsPerChunk - 1) / kRowsPerChunk;
  return chunks < 1 ? 1 : (chunks > kMaxChunks ? kMaxChunks : chunks);
}

#define DP_SYNC_BN_DEFINE(T)                                                                      \
  void channel_sum(const T* x, int64_t rows, int64_t c, float* partial, float* sum, Stream s) {   \
    channel_sums(SumOf<T>{x}, rows, c, partial, 1.0, sum, nullptr, s);                            \
  }                                                                                               \
  void bn_local_moments(const T* x, int64_t rows, int64_t c, float* partial, float* mean,         \
                        float* m2, Stream s) {                                                    \
    channel_sums(SumOf<T>{x}, rows, c, partial, 1.0 / double(rows), mean, nullptr, s);            \
    channel_sums(SquaredDeviation<T>{x, mean}, rows, c, partial, 1.0, m2, nullptr, s);            \
  }                                                                                               \
  void bn_normalize(const T* x, const float* gamma, const float* beta, const float* mean,         \
                    const float* invstd, bool relu, T* y, int64_t rows, int64_t c, Stream s) {    \
    normalize_kernel<<<blocks_for(rows* c), kThreads, 0, s>>>(                                    \
        x, Affine{gamma, beta, mean, invstd}, relu, y, rows * c, c);                              \
  }                                                                                               \
  void bn_backward_sums(const T* x, const T* dy, const float* gamma, const float* beta,           \
                        const float* mean, const float* invstd, bool relu, int64_t rows,          \
                        int64_t c, float* partial, float* sum_dy, float* sum_dy_xhat, Stream s) { \
    channel_sums(GradientSums<T>{x, dy, Affine{gamma, beta, mean, invstd}, relu}, rows, c,        \
                 partial, 1.0, sum_dy, sum_dy_xhat, s);                                           \
  }                                                                                               \
  void bn_backward_input(const T* x, const T* dy, const float* gamma, const float* beta,          \
                         const float* mean, const float* invstd, const float* mean_dy,            \
                         const float* mean_dy_xhat, bool relu, T* dx, int64_t rows, int64_t c,    \
                         Stream s) {                                                              \
    backward_input_kernel<<<blocks_for(rows* c), kThreads, 0, s>>>(                               \
        x, dy, Affine{gamma, beta, mean, invstd}, mean_dy, mean_dy_xhat, relu, dx, rows * c, c);  \
  }                                                                                               \
  void bn_relu_mask(const T* x, const T* dy, const float* gamma, const float* beta,               \
                    const float* mean, const float* invstd, T* out, int64_t rows, int64_t c,      \
                    Stream s) {                                                                   \
    relu_mask_kernel<<<blocks_for(rows* c), kThreads, 0, s>>>(                                    \
        x, dy, Affine{gamma, beta, mean, invstd}, out, rows * c, c);                              \
  }
DP_SYNC_BN_DEFINE(float)
DP_SYNC_BN_DEFINE(bf16)
#undef DP_SYNC_BN_DEFINE

}  // namespace dp::cuda::kernels
