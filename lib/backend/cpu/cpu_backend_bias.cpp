// CpuBackend's per-channel bias (a convolution's bias), forward and backward: OpenMP loops over
// NHWC or nChw16c activations. Channel k of pixel p of image i sits at
// ((i * C/B + k/B) * HW + p) * B + k%B, with B = 16 in nChw16c and B = C in NHWC. Backward sums
// as channel_rows.h does.
#include <vector>

#include "backend/cpu/channel_rows.h"
#include "backend/cpu/cpu_backend.h"
#include "backend/cpu/openmp_threshold.h"
#include "core/error.h"

namespace dp::cpu {
namespace {

struct BiasShape {
  int64_t rows;   // (image, channel block) pairs: n * C/B
  int64_t hw;     // pixels per image
  int64_t block;  // channels per block (B)
  int64_t c;
};

BiasShape bias_shape(const Tensor& t, const Tensor& b, const char* op) {
  DP_CHECK(t.rank() == 4 && b.numel() == t.dim(3), "{}: activation {} and bias {} disagree", op,
           to_string(t.shape()), to_string(b.shape()));
  const int64_t c = t.dim(3);
  const int64_t block = t.layout() == Layout::nchw16c ? 16 : c;
  return {t.dim(0) * (c / block), t.dim(1) * t.dim(2), block, c};
}

}  // namespace

void CpuBackend::channel_bias_forward(const Tensor& b, Tensor& y) {
  const BiasShape s = bias_shape(y, b, "channel_bias_forward");
  const float* pb = b.data();
  float* py = y.data();
  const int64_t blocks_per_image = s.c / s.block;
#pragma omp parallel for collapse(2) if (s.rows * s.hw * s.block > kParallelMin)
  for (int64_t r = 0; r < s.rows; ++r)
    for (int64_t p = 0; p < s.hw; ++p) {
      float* out = py + (r * s.hw + p) * s.block;
      const float* bias = pb + (r % blocks_per_image) * s.block;
#pragma omp simd
      for (int64_t k = 0; k < s.block; ++k) out[k] += bias[k];
    }
}

void CpuBackend::channel_bias_backward(const Tensor& dy, Tensor& db) {
  DP_CHECK(dy.rank() == 4, "channel_bias_backward expects {{N,H,W,C}}, got {}",
           to_string(dy.shape()));
  const int64_t c = dy.dim(3);
  db.ensure({c});
  const ChannelRows rows = channel_rows(dy.dim(0), dy.dim(1), dy.dim(2), c, dy.layout());
  const float* pdy = dy.data();
  const std::vector<double> sum =
      sum_over_rows(rows, c, 1, [&](int64_t r, int64_t c0, double* acc) {
        const float* row = pdy + r * rows.width;
        for (int64_t j = 0; j < rows.width; ++j) acc[c0 + j] += row[j];
      });
  float* pdb = db.data();
  for (int64_t k = 0; k < c; ++k) pdb[k] = static_cast<float>(sum[k]);
}

}  // namespace dp::cpu
