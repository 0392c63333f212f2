// The linear layer's bias kernels (kernels.h): the bias broadcast to every row, and its
// gradient as column sums in a fixed order.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include "backend/cuda/element_access.cuh"
#include "backend/cuda/grid_stride.cuh"
#include "backend/cuda/kernels.h"

namespace dp::cuda::kernels {
namespace {

__global__ void broadcast_rows_kernel(const float* b, float* y, int64_t rows, int64_t cols) {
  DP_GRID_STRIDE(i, rows * cols) y[i] = b[i % cols];
}

__global__ void column_sums_kernel(const float* dy, float* db, int64_t rows, int64_t cols) {
  DP_GRID_STRIDE(j, cols) {
    float s = 0.f;
    for (int64_t r = 0; r < rows; ++r) s += dy[r * cols + j];
    db[j] = s;
  }
}

}  // namespace

void broadcast_rows(const float* b, float* y, int64_t rows, int64_t cols, Stream s) {
  broadcast_rows_kernel<<<blocks_for(rows * cols), kThreads, 0, s>>>(b, y, rows, cols);
}
void column_sums(const float* dy, float* db, int64_t rows, int64_t cols, Stream s) {
  column_sums_kernel<<<blocks_for(cols), kThreads, 0, s>>>(dy, db, rows, cols);
}

}  // namespace dp::cuda::kernels
