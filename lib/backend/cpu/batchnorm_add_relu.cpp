#include "backend/cpu/batchnorm_add_relu.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "backend/cpu/batchnorm_statistics.h"
#include "backend/cpu/openmp_threshold.h"
#include "backend/cpu/simd_lanes.h"

namespace dp::cpu {
namespace {

using simd::kLanes;

// The data as runs. nChw16c (and 16-channel NHWC, the same bytes): a run is one contiguous
// (image, channel block) plane of 16-channel rows, in block run % blocks. NHWC with more
// channels: a run is up to 256 whole pixels, all blocks of each pixel in a row (so the loops read
// memory in order; a run per block would stride a pixel's width between 64-byte reads).
// Pixels per NHWC run: at most 256 (a short float sum), and at least 8 runs per thread, since a
// small map with many channels (ResNet-50's last stages) has few pixels.
inline int64_t pixel_run(int64_t pixels) {
  const int64_t runs = 8 * omp_get_max_threads();
  return std::clamp<int64_t>((pixels + runs - 1) / runs, 1, 256);
}

struct Runs {
  int64_t blocks, pixels, rows, count;
  bool planes;

  Runs(const BatchNormGeometry& g, Layout layout)
      : blocks(g.c / kLanes),
        pixels(g.n * g.h * g.w),
        rows(layout == Layout::nchw16c || g.c == kLanes ? g.h * g.w : pixel_run(pixels)),
        count(layout == Layout::nchw16c || g.c == kLanes ? g.n * blocks
                                                         : (pixels + rows - 1) / rows),
        planes(layout == Layout::nchw16c || g.c == kLanes) {}
  int64_t channel0(int64_t run) const { return planes ? run % blocks * kLanes : 0; }
  // The run's first float and its number of rows.
  int64_t start(int64_t run) const { return run * rows * (planes ? kLanes : blocks * kLanes); }
  int64_t length(int64_t run) const { return planes ? rows : std::min(rows, pixels - run * rows); }
};

// Per channel: the sum of (x - shift) and of its square over a run, added into double sums. The
// float partial sums cover at most 256 rows each, so they keep their digits on large maps too.
DP_AVX512F void accumulate_run(const float* x, int64_t rows, const float* shift, double* sum,
                               double* square_sum) {
  constexpr int64_t kChunk = 256;
  const __m512 s = _mm512_loadu_ps(shift);
  for (int64_t first = 0; first < rows; first += kChunk) {
    const int64_t end = std::min(rows, first + kChunk);
    // Two chains each: the adds' latency, not the loads, would bind a single one.
    __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
    __m512 q0 = _mm512_setzero_ps(), q1 = _mm512_setzero_ps();
    int64_t r = first;
    for (; r + 1 < end; r += 2) {
      const __m512 d0 = _mm512_sub_ps(_mm512_loadu_ps(x + r * kLanes), s);
      const __m512 d1 = _mm512_sub_ps(_mm512_loadu_ps(x + (r + 1) * kLanes), s);
      a0 = _mm512_add_ps(a0, d0);
      a1 = _mm512_add_ps(a1, d1);
      q0 = _mm512_fmadd_ps(d0, d0, q0);
      q1 = _mm512_fmadd_ps(d1, d1, q1);
    }
    if (r < end) {
      const __m512 d0 = _mm512_sub_ps(_mm512_loadu_ps(x + r * kLanes), s);
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
DP_AVX512F void normalize_add_relu_run(const float* x, const float* residual, float* y,
                                       int64_t rows, const float* mean, const float* scale,
                                       const float* beta) {
  const __m512 m = _mm512_loadu_ps(mean), a = _mm512_loadu_ps(scale), b = _mm512_loadu_ps(beta);
  const __m512 zero = _mm512_setzero_ps();
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t o = r * kLanes;
    const __m512 v = _mm512_fmadd_ps(_mm512_sub_ps(_mm512_loadu_ps(x + o), m), a,
                                     _mm512_add_ps(b, _mm512_loadu_ps(residual + o)));
    // v where v > 0, else 0 (NaN included): the unfused add_relu_forward's `s > 0 ? s : 0`.
    _mm512_storeu_ps(y + o, _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(v, zero, _CMP_GT_OQ), v));
  }
}

// accumulate_run for NHWC pixels of `blocks` channel blocks each: the float partial sums live in
// `partial` (2 x blocks x 16 floats, L1-resident) instead of registers.
DP_AVX512F void accumulate_pixels(const float* x, int64_t pixels, int64_t blocks,
                                  const float* shift, float* partial, double* sum,
                                  double* square_sum) {
  const int64_t c = blocks * kLanes;
  float* a = partial;
  float* q = partial + c;
  std::fill(partial, partial + 2 * c, 0.0f);
  for (int64_t p = 0; p < pixels; ++p)
    for (int64_t b = 0; b < blocks; ++b) {
      const int64_t k = b * kLanes;
      const __m512 d = _mm512_sub_ps(_mm512_loadu_ps(x + p * c + k), _mm512_loadu_ps(shift + k));
      _mm512_storeu_ps(a + k, _mm512_add_ps(_mm512_loadu_ps(a + k), d));
      _mm512_storeu_ps(q + k, _mm512_fmadd_ps(d, d, _mm512_loadu_ps(q + k)));
    }
  for (int64_t k = 0; k < c; ++k) {
    sum[k] += a[k];
    square_sum[k] += q[k];
  }
}

// normalize_add_relu_run for NHWC pixels of `blocks` channel blocks each.
DP_AVX512F void normalize_add_relu_pixels(const float* x, const float* residual, float* y,
                                          int64_t pixels, int64_t blocks, const float* mean,
                                          const float* scale, const float* beta) {
  const int64_t c = blocks * kLanes;
  const __m512 zero = _mm512_setzero_ps();
  for (int64_t p = 0; p < pixels; ++p)
    for (int64_t b = 0; b < blocks; ++b) {
      const int64_t k = b * kLanes, o = p * c + k;
      const __m512 v =
          _mm512_fmadd_ps(_mm512_sub_ps(_mm512_loadu_ps(x + o), _mm512_loadu_ps(mean + k)),
                          _mm512_loadu_ps(scale + k),
                          _mm512_add_ps(_mm512_loadu_ps(beta + k), _mm512_loadu_ps(residual + o)));
      _mm512_storeu_ps(y + o, _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(v, zero, _CMP_GT_OQ), v));
    }
}

// Per thread, the sums of (x - shift) and of its square for every channel, into scratch.sums:
// `threads` blocks of 2 * c doubles (the sums, then the square sums).
void accumulate_shifted_sums(const Runs& runs, const float* xs, int64_t numel, int64_t c,
                             int threads, BatchNormAddReluScratch& scratch) {
  const std::vector<float>& shift = scratch.shift;
  std::vector<double>& sums = scratch.sums;
  sums.assign(static_cast<size_t>(threads) * 2 * c, 0.0);
  std::vector<float>& partials = scratch.partials;  // NHWC only; accumulate_pixels zeroes them
  partials.resize(runs.planes ? 0 : static_cast<size_t>(threads) * 2 * c);
#pragma omp parallel num_threads(threads) if (numel > kParallelMin)
  {
    const int thread = omp_get_thread_num();
    double* sum = sums.data() + static_cast<int64_t>(thread) * 2 * c;
    double* square_sum = sum + c;
#pragma omp for schedule(static)
    for (int64_t run = 0; run < runs.count; ++run) {
      const int64_t c0 = runs.channel0(run);
      if (runs.planes)
        accumulate_run(xs + runs.start(run), runs.length(run), shift.data() + c0, sum + c0,
                       square_sum + c0);
      else
        accumulate_pixels(xs + runs.start(run), runs.length(run), runs.blocks, shift.data(),
                          partials.data() + static_cast<int64_t>(thread) * 2 * c, sum,
                          square_sum);
    }
  }
}

// The batch statistics from the per-thread sums: mean and biased variance per channel, and
// gamma / sqrt(variance + eps) into scratch.scale.
void reduce_statistics(const BatchNormGeometry& g, const Runs& runs, int threads,
                       const float* gamma, BatchNormAddReluScratch& scratch, float* mean,
                       float* var) {
  const std::vector<float>& shift = scratch.shift;
  const std::vector<double>& sums = scratch.sums;
  const double count = static_cast<double>(runs.pixels);
  std::vector<float>& scale = scratch.scale;
  scale.resize(g.c);
  for (int64_t c = 0; c < g.c; ++c) {
    double s = 0, q = 0;
    for (int t = 0; t < threads; ++t) {
      s += sums[static_cast<size_t>(t) * 2 * g.c + c];
      q += sums[static_cast<size_t>(t) * 2 * g.c + g.c + c];
    }
    const ChannelMoments moments = shifted_moments(shift[c], s, q, count);
    mean[c] = static_cast<float>(moments.mean);
    var[c] = static_cast<float>(moments.variance);
    scale[c] = static_cast<float>(gamma[c] / std::sqrt(moments.variance + g.eps));
  }
}

// y = relu((x - mean) * scale + beta + residual) over every run.
void normalize_add_relu(const Runs& runs, const float* xs, const float* rs, float* ys,
                        int64_t numel, const float* mean, const float* scale, const float* beta) {
#pragma omp parallel for schedule(static) if (numel > kParallelMin)
  for (int64_t run = 0; run < runs.count; ++run) {
    const int64_t c0 = runs.channel0(run), at = runs.start(run);
    if (runs.planes)
      normalize_add_relu_run(xs + at, rs + at, ys + at, runs.length(run), mean + c0, scale + c0,
                             beta + c0);
    else
      normalize_add_relu_pixels(xs + at, rs + at, ys + at, runs.length(run), runs.blocks, mean,
                                scale, beta);
  }
}

}  // namespace

bool batchnorm_add_relu_applies(const BatchNormGeometry& g) {
  return simd::cpu_has_avx512f() && !g.fuse_relu && g.c % kLanes == 0 && g.n * g.h * g.w > 1;
}

void fused_batchnorm_add_relu(const BatchNormGeometry& g, const Tensor& x, const Tensor& gamma,
                              const Tensor& beta, const Tensor& residual, Tensor& y,
                              Tensor& saved_mean, Tensor& saved_var,
                              BatchNormAddReluScratch& scratch) {
  y.ensure(x.shape());
  y.set_layout(x.layout());
  saved_mean.ensure({g.c});
  saved_var.ensure({g.c});
  const Runs runs(g, x.layout());
  const float* xs = x.data<float>();
  // The shift: each channel's first value (shifted_moments says why).
  std::vector<float>& shift = scratch.shift;
  shift.resize(g.c);
  for (int64_t c = 0; c < g.c; ++c)
    shift[c] = runs.planes ? xs[runs.start(c / kLanes) + c % kLanes] : xs[c];

  const int threads = omp_get_max_threads();
  accumulate_shifted_sums(runs, xs, x.numel(), g.c, threads, scratch);
  float* mean = saved_mean.data();
  reduce_statistics(g, runs, threads, gamma.data<float>(), scratch, mean, saved_var.data());
  normalize_add_relu(runs, xs, residual.data<float>(), y.data<float>(), x.numel(), mean,
                     scratch.scale.data(), beta.data<float>());
}

}  // namespace dp::cpu
