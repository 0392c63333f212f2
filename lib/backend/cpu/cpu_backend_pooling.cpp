// CpuBackend's global average pooling, forward and backward: OpenMP loops over NHWC or
// nChw16c activations. (Max pooling runs on oneDNN: onednn_pool.cpp.)
#include "backend/cpu/cpu_backend.h"
#include "backend/cpu/openmp_threshold.h"
#include "backend/operand_checks.h"
#include "core/error.h"

namespace dp::cpu {

// Channel k of pixel p of image i sits at ((i * C/16 + k/16) * HW + p) * 16 + k%16 in nChw16c:
// the loops below run over channel blocks of `block` channels, which is all of C in NHWC.
namespace {
struct ChannelBlocks {
  int64_t block, count;  // channels per block, blocks per image
  ChannelBlocks(const Tensor& t) {
    const int64_t c = t.dim(3);
    block = t.layout() == Layout::nchw16c ? kChannelBlock : c;
    count = c / block;
  }
};
}  // namespace

void CpuBackend::global_avgpool_forward(const Tensor& x, Tensor& y) {
  check_f32("global_avgpool_forward", {&x});
  check_global_avgpool_forward(x);
  const int64_t n = x.dim(0), hw = x.dim(1) * x.dim(2), c = x.dim(3);
  const ChannelBlocks blocks(x);
  y.ensure({n, c});
  const float* px = x.data();
  float* py = y.data();
  const float scale = 1.f / static_cast<float>(hw);
#pragma omp parallel for if (n * hw * c > kParallelMin)
  for (int64_t i = 0; i < n; ++i)
    for (int64_t b = 0; b < blocks.count; ++b) {
      float* out = py + i * c + b * blocks.block;
      const float* in = px + (i * blocks.count + b) * hw * blocks.block;
      for (int64_t k = 0; k < blocks.block; ++k) out[k] = 0.f;
      for (int64_t p = 0; p < hw; ++p) {
#pragma omp simd
        for (int64_t k = 0; k < blocks.block; ++k) out[k] += in[p * blocks.block + k];
      }
#pragma omp simd
      for (int64_t k = 0; k < blocks.block; ++k) out[k] *= scale;
    }
}

// dx is written in the layout a convolution would give its shape, which is the layout the
// forward's input had inside a network.
void CpuBackend::global_avgpool_backward(const Tensor& dy, Tensor& dx) {
  check_f32("global_avgpool_backward", {&dy, &dx});
  check_global_avgpool_backward(dy, dx);
  const int64_t n = dx.dim(0), hw = dx.dim(1) * dx.dim(2), c = dx.dim(3);
  dx.set_layout(preferred_layout(blocked_, c, dx.dim(1), dx.dim(2)));
  const ChannelBlocks blocks(dx);
  const float* pdy = dy.data();
  float* pdx = dx.data();
  const float scale = 1.f / static_cast<float>(hw);
#pragma omp parallel for collapse(3) if (n * hw * c > kParallelMin)
  for (int64_t i = 0; i < n; ++i)
    for (int64_t b = 0; b < blocks.count; ++b)
      for (int64_t p = 0; p < hw; ++p) {
        float* out = pdx + ((i * blocks.count + b) * hw + p) * blocks.block;
        const float* in = pdy + i * c + b * blocks.block;
#pragma omp simd
        for (int64_t k = 0; k < blocks.block; ++k) out[k] = in[k] * scale;
      }
}

}  // namespace dp::cpu
