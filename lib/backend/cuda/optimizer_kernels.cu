// The optimizer's kernels (kernels.h): the SGD update (backend/sgd_update.h's arithmetic) and
// the sum of squares behind gradient norms, reduced in a fixed order.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include "backend/cuda/element_access.cuh"
#include "backend/cuda/grid_stride.cuh"
#include "backend/cuda/kernels.h"

namespace dp::cuda::kernels {
namespace {

__global__ void sgd_kernel(SgdHyper h, float* w, const float* g, float* buf, const float* mask,
                           int64_t n) {
  DP_GRID_STRIDE(i, n) {
    float no_buffer = 0;
    w[i] =
        sgd_update(h, w[i], g[i], mask ? mask[i] : 1.f, buf != nullptr, buf ? buf[i] : no_buffer);
  }
}

__global__ void sum_of_squares_kernel(const float* x, int64_t n, double* partials) {
  __shared__ double shared[kThreads];
  double s = 0;
  DP_GRID_STRIDE(i, n) s += static_cast<double>(x[i]) * x[i];
  shared[threadIdx.x] = s;
  __syncthreads();
  for (int stride = kThreads / 2; stride > 0; stride >>= 1) {
    if (threadIdx.x < stride) shared[threadIdx.x] += shared[threadIdx.x + stride];
    __syncthreads();
  }
  if (threadIdx.x == 0) partials[blockIdx.x] = shared[0];
}

}  // namespace

void sgd_step(const SgdHyper& h, float* w, const float* g, float* buf, const float* mask, int64_t n,
              Stream s) {
  sgd_kernel<<<blocks_for(n), kThreads, 0, s>>>(h, w, g, buf, mask, n);
}
int sum_of_squares_blocks(int64_t n) {
  int b = blocks_for(n);
  return b > 1024 ? 1024 : b;
}
void sum_of_squares(const float* x, int64_t n, double* partials, int blocks, Stream s) {
  sum_of_squares_kernel<<<blocks, kThreads, 0, s>>>(x, n, partials);
}

}  // namespace dp::cuda::kernels
