#include "backend/cpu/batchnorm_add_relu.h"

#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "backend/cpu/openmp_threshold.h"

namespace dp::cpu {
namespace {

constexpr int64_t kLanes = 16;  // channels per AVX-512 register and per nChw16c block

#define DP_AVX512 __attribute__((target("avx512f")))

// The data as runs of rows of 16 channels that share one channel block. nChw16c (and 16-channel
// NHWC, the same bytes): a run is one contiguous (image, block) plane. NHWC: a run is one block
// of up to 256 pixels, a pixel's width apart. Run r is always in block r % blocks.
struct Runs {
  int64_t blocks, pixels, rows, stride, count;
  bool planes;

  Runs(const BatchNormGeometry& g, Layout layout)
      : blocks(g.c / kLanes),
        pixels(g.n * g.h * g.w),
        rows(layout == Layout::nchw16c || g.c == kLanes ? g.h * g.w
                                                        : std::min<int64_t>(pixels, 256)),
        stride(layout == Layout::nchw16c || g.c == kLanes ? kLanes : g.c),
        count((pixels + rows - 1) / rows * blocks),
        planes(stride == kLanes) {}
  int64_t channel0(int64_t run) const { return run % blocks * kLanes; }
  // The run's first float.
  int64_t start(int64_t run) const {
    return planes ? run * rows * kLanes : run / blocks * rows * stride + run % blocks * kLanes;
  }
  int64_t length(int64_t run) const {
    return planes ? rows : std::min(rows, pixels - run / blocks * rows);
  }
};

// Per channel: the sum of (x - shift) and of its square over a run, added into double sums. The
// float partial sums cover at most 256 rows each, so they keep their digits on large maps too.
DP_AVX512 void accumulate_run(const float* x, int64_t rows, int64_t stride, const float* shift,
                              double* sum, double* square_sum) {
  constexpr int64_t kChunk = 256;
  const __m512 s = _mm512_loadu_ps(shift);
  for (int64_t first = 0; first < rows; first += kChunk) {
    const int64_t end = std::min(rows, first + kChunk);
    // Two chains each: the adds' latency, not the loads, would bind a single one.
    __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
    __m512 q0 = _mm512_setzero_ps(), q1 = _mm512_setzero_ps();
    int64_t r = first;
    for (; r + 1 < end; r += 2) {
      const __m512 d0 = _mm512_sub_ps(_mm512_loadu_ps(x + r * stride), s);
      const __m512 d1 = _mm512_sub_ps(_mm512_loadu_ps(x + (r + 1) * stride), s);
      a0 = _mm512_add_ps(a0, d0);
      a1 = _mm512_add_ps(a1, d1);
      q0 = _mm512_fmadd_ps(d0, d0, q0);
      q1 = _mm512_fmadd_ps(d1, d1, q1);
    }
    if (r < end) {
      const __m512 d0 = _mm512_sub_ps(_mm512_loadu_ps(x + r * stride), s);
      a0 = _mm512_add_ps(a0, d0);
      q0 = _mm512_fmadd_ps(d0, d0, q0);
    }
    alignas(64) float a[kLanes], q[kLanes];
    _mm512_store_ps(a, _mm512_add_ps(a0, a1));
    _mm512_store_ps(q, _mm512_add_ps(q0, q1));
    for (int64_t l = 0; l < kLanes; ++l) {
      sum[l] += a[l];
      square_sum[l] += q[l];
    }
  }
}

// y = relu((x - mean) * scale + beta + residual). Centring first: x * scale + (beta - mean *
// scale) would cancel two large terms where the mean is large against the spread.
DP_AVX512 void normalize_add_relu_run(const float* x, const float* residual, float* y, int64_t rows,
                                      int64_t stride, const float* mean, const float* scale,
                                      const float* beta) {
  const __m512 m = _mm512_loadu_ps(mean), a = _mm512_loadu_ps(scale), b = _mm512_loadu_ps(beta);
  const __m512 zero = _mm512_setzero_ps();
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t o = r * stride;
    const __m512 v = _mm512_fmadd_ps(_mm512_sub_ps(_mm512_loadu_ps(x + o), m), a,
                                     _mm512_add_ps(b, _mm512_loadu_ps(residual + o)));
    // v where v > 0, else 0 (NaN included): the unfused add_relu_forward's `s > 0 ? s : 0`.
    _mm512_storeu_ps(y + o, _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(v, zero, _CMP_GT_OQ), v));
  }
}

}  // namespace

bool batchnorm_add_relu_applies(const BatchNormGeometry& g) {
  static const bool avx512 = __builtin_cpu_supports("avx512f");
  return avx512 && !g.fuse_relu && g.c % kLanes == 0 && g.n * g.h * g.w > 1;
}

void fused_batchnorm_add_relu(const BatchNormGeometry& g, const Tensor& x, const Tensor& gamma,
                              const Tensor& beta, const Tensor& residual, Tensor& y,
                              Tensor& saved_mean, Tensor& saved_var) {
  y.ensure(x.shape());
  y.set_layout(x.layout());
  saved_mean.ensure({g.c});
  saved_var.ensure({g.c});
  const Runs runs(g, x.layout());
  const float* xs = x.data<float>();
  // The shift: each channel's first value, close enough to its mean that the one-pass variance
  // E[(x-s)^2] - E[x-s]^2 keeps its digits (activations with a large mean and small spread
  // would lose them about zero).
  std::vector<float> shift(g.c);
  for (int64_t b = 0; b < runs.blocks; ++b)
    for (int64_t l = 0; l < kLanes; ++l) shift[b * kLanes + l] = xs[runs.start(b) + l];

  const int threads = omp_get_max_threads();
  std::vector<double> sums(static_cast<size_t>(threads) * 2 * g.c, 0.0);
#pragma omp parallel num_threads(threads) if (x.numel() > kParallelMin)
  {
    double* sum = sums.data() + static_cast<int64_t>(omp_get_thread_num()) * 2 * g.c;
    double* square_sum = sum + g.c;
#pragma omp for schedule(static)
    for (int64_t run = 0; run < runs.count; ++run) {
      const int64_t c0 = runs.channel0(run);
      accumulate_run(xs + runs.start(run), runs.length(run), runs.stride, shift.data() + c0,
                     sum + c0, square_sum + c0);
    }
  }
  const double count = static_cast<double>(runs.pixels);
  std::vector<float> scale(g.c);
  float* mean = saved_mean.data();
  float* var = saved_var.data();
  for (int64_t c = 0; c < g.c; ++c) {
    double s = 0, q = 0;
    for (int t = 0; t < threads; ++t) {
      s += sums[static_cast<size_t>(t) * 2 * g.c + c];
      q += sums[static_cast<size_t>(t) * 2 * g.c + g.c + c];
    }
    const double centred = s / count;
    const double variance = std::max(0.0, q / count - centred * centred);
    const double m = shift[c] + centred;
    const double a = gamma.data<float>()[c] / std::sqrt(variance + g.eps);
    mean[c] = static_cast<float>(m);
    var[c] = static_cast<float>(variance);
    scale[c] = static_cast<float>(a);
  }

  const float* rs = residual.data<float>();
  float* ys = y.data<float>();
#pragma omp parallel for schedule(static) if (x.numel() > kParallelMin)
  for (int64_t run = 0; run < runs.count; ++run) {
    const int64_t c0 = runs.channel0(run), at = runs.start(run);
    normalize_add_relu_run(xs + at, rs + at, ys + at, runs.length(run), runs.stride, mean + c0,
                           scale.data() + c0, beta.data<float>() + c0);
  }
}

void update_running_statistics(const BatchNormGeometry& g, const Tensor& saved_mean,
                               const Tensor& saved_var, Tensor& running_mean, Tensor& running_var) {
  const float m = g.momentum;
  const float unbias =
      static_cast<float>(g.n * g.h * g.w) / static_cast<float>(g.n * g.h * g.w - 1);
  float* rm = running_mean.data();
  float* rv = running_var.data();
  const float* mean = saved_mean.data();
  const float* var = saved_var.data();
  for (int64_t c = 0; c < g.c; ++c) {
    rm[c] = (1 - m) * rm[c] + m * mean[c];
    rv[c] = (1 - m) * rv[c] + m * var[c] * unbias;
  }
}

}  // namespace dp::cpu
