// Softmax cross-entropy with label smoothing (kernels.h): one warp per row, a fixed
// reduction order, so the loss is the same on every run; the sums, the log-sum-exp and the
// probabilities in double, as the CPU backend computes them (a confident row's nll is a small
// difference of large terms).
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cfloat>

#include "backend/cuda/element_access.cuh"
#include "backend/cuda/grid_stride.cuh"
#include "backend/cuda/kernels.h"

namespace dp::cuda::kernels {
namespace {

__device__ double warp_sum(double v) {
  for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
  return v;
}

__device__ void warp_argmax(float& v, int64_t& j) {
  for (int off = 16; off > 0; off >>= 1) {
    float ov = __shfl_xor_sync(0xffffffffu, v, off);
    int64_t oj = __shfl_xor_sync(0xffffffffu, j, off);
    // Ties go to the lower index, as the CPU backend's first-maximum scan.
    if (ov > v || (ov == v && oj < j)) {
      v = ov;
      j = oj;
    }
  }
}

// One warp per row: max and argmax, then sum of exp and of z, then the gradient.
__global__ void softmax_xent_kernel(const float* logits, const int32_t* labels, int64_t n,
                                    int64_t k, float smoothing, float* dlogits, float* row_loss,
                                    int32_t* hit, int32_t* bad) {
  const int lane = threadIdx.x % 32;
  const int64_t row = (blockIdx.x * int64_t(blockDim.x) + threadIdx.x) / 32;
  if (row >= n) return;  // whole warps leave together: n rows map to whole warps
  const float* z = logits + row * k;
  float* dz = dlogits + row * k;
  const int32_t y = labels[row];
  const bool valid = y >= 0 && y < k;
  float best = -FLT_MAX;
  int64_t arg = k;
  for (int64_t j = lane; j < k; j += 32)
    if (arg == k || z[j] > best) {  // within a lane, the first maximum wins
      best = z[j];
      arg = j;
    }
  warp_argmax(best, arg);
  double sum_exp = 0, sum_z = 0;
  for (int64_t j = lane; j < k; j += 32) {
    sum_exp += exp(double(z[j]) - best);
    sum_z += z[j];
  }
  sum_exp = warp_sum(sum_exp);
  sum_z = warp_sum(sum_z);
  const double log_sum = best + log(sum_exp);
  const double eps = smoothing;
  const float inv_n = 1.f / static_cast<float>(n);
  for (int64_t j = lane; j < k; j += 32) {
    const double p = exp(double(z[j]) - log_sum);
    const double target = eps / double(k) + (j == y ? 1.0 - eps : 0.0);
    dz[j] = static_cast<float>(p - target) * inv_n;
  }
  if (lane == 0) {
    bad[row] = valid ? 0 : 1;
    hit[row] = valid && arg == y ? 1 : 0;
    const double nll = valid ? log_sum - z[y] : 0.0;
    const double smooth = log_sum - sum_z / double(k);
    row_loss[row] = static_cast<float>((1.0 - eps) * nll + eps * smooth);
  }
}

}  // namespace

void softmax_cross_entropy(const float* logits, const int32_t* labels, int64_t n, int64_t k,
                           float smoothing, float* dlogits, float* row_loss, int32_t* hit,
                           int32_t* bad, Stream s) {
  const int64_t threads = n * 32;
  const int blocks = static_cast<int>((threads + kThreads - 1) / kThreads);
  softmax_xent_kernel<<<blocks, kThreads, 0, s>>>(logits, labels, n, k, smoothing, dlogits,
                                                  row_loss, hit, bad);
}

}  // namespace dp::cuda::kernels
