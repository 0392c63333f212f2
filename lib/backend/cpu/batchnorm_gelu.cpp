#include "backend/cpu/batchnorm_gelu.h"

#include <omp.h>

#include <algorithm>
#include <cmath>

#include "backend/cpu/batchnorm_statistics.h"
#include "backend/cpu/gelu_simd.h"
#include "backend/cpu/openmp_threshold.h"
#include "backend/cpu/simd_lanes.h"
#include "core/bf16.h"
#include "core/error.h"

namespace dp::cpu {
namespace {

using simd::gelu;
using simd::gelu_slope;
using simd::kLanes;
using simd::load16;
using simd::Planes;
using simd::round_bf16;
using simd::rounded_bf16;
using simd::store_bits16;
using simd::widen_bf16;

// Channels per pixel at most: the backward's per-unit sums live on the stack.
constexpr int64_t kMaxChannels = 256;

// --- the work: units of one (image, plane) each, split over threads --------------------------

// The tensor as units: unit u holds `pixels` pixels of `stride` lanes from element u * size(),
// its lane l being channel channel0(u) + l.
struct Units {
  int64_t count, pixels, stride, planes;
  Units(const BatchNormGeometry& g, Layout layout) {
    const Planes p(layout, g.c);
    planes = p.count;
    stride = p.stride;
    pixels = g.h * g.w;
    count = g.n * planes;
  }
  int64_t size() const { return pixels * stride; }
  int64_t channel0(int64_t u) const { return u % planes * stride; }
};

// Runs body(thread, unit) over every unit on the OpenMP team, and gives each thread 2 * c
// zeroed double sums in scratch.sums.
template <typename Body>
void for_each_unit(const Units& units, int64_t c, BatchNormGeluScratch& scratch, Body&& body) {
  const int threads = omp_get_max_threads();
  scratch.sums.assign(static_cast<size_t>(threads) * 2 * c, 0.0);
#pragma omp parallel num_threads(threads) if (units.count * units.size() > kParallelMin)
  {
    const int thread = omp_get_thread_num();
#pragma omp for schedule(static)
    for (int64_t u = 0; u < units.count; ++u) body(thread, u);
  }
}

// Thread `thread`'s 2 * c sums: the first per channel, then the second.
double* thread_sums(BatchNormGeluScratch& scratch, int thread, int64_t c) {
  return scratch.sums.data() + static_cast<int64_t>(thread) * 2 * c;
}

// The two per-channel sums of every thread added up (first[c], second[c]).
void total_sums(const BatchNormGeluScratch& scratch, int64_t c, std::vector<double>& first,
                std::vector<double>& second) {
  first.assign(c, 0.0);
  second.assign(c, 0.0);
  const int64_t threads = static_cast<int64_t>(scratch.sums.size()) / (2 * c);
  for (int64_t t = 0; t < threads; ++t)
    for (int64_t k = 0; k < c; ++k) {
      first[k] += scratch.sums[(t * 2 + 0) * c + k];
      second[k] += scratch.sums[(t * 2 + 1) * c + k];
    }
}

// Accumulators for 16 lanes in double: the sums and the square sums, low and high 8 lanes.
struct WideSums {
  __m512d sum_lo, sum_hi, square_lo, square_hi;
};

DP_AVX512BF16 inline void add_wide(WideSums& w, __m512 d) {
  const __m512d lo = _mm512_cvtps_pd(_mm512_castps512_ps256(d));
  const __m512d hi =
      _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(d), 1)));
  w.sum_lo = _mm512_add_pd(w.sum_lo, lo);
  w.sum_hi = _mm512_add_pd(w.sum_hi, hi);
  w.square_lo = _mm512_fmadd_pd(lo, lo, w.square_lo);
  w.square_hi = _mm512_fmadd_pd(hi, hi, w.square_hi);
}

// out[0..16) += the 16 lanes of (lo, hi).
DP_AVX512BF16 inline void flush_wide(double* out, __m512d lo, __m512d hi) {
  _mm512_storeu_pd(out, _mm512_add_pd(_mm512_loadu_pd(out), lo));
  _mm512_storeu_pd(out + 8, _mm512_add_pd(_mm512_loadu_pd(out + 8), hi));
}

// Sums of (x - shift) and of its square over one unit, per lane, added to sum and square in
// double: x and the shift are bf16 values, so each difference (exact in f32 while their
// exponents are close) and its square lose nothing there, and the statistics come out as the
// float64 ones rounded (f32 sums of a map's pixels had them off by a few 1e-6, enough to move z
// across bf16 rounding ties).
// One 16-lane group at a time down the unit's pixels, in registers; two chains of accumulators
// (even and odd pixels), since the adds' latency would bind one.
DP_AVX512BF16 void moments_unit(const uint16_t* x, int64_t pixels, int64_t s, const float* shift,
                                double* sum, double* square) {
  for (int64_t l = 0; l < s; l += kLanes) {
    const __m512 base = _mm512_loadu_ps(shift + l);
    const __m512d zero = _mm512_setzero_pd();
    WideSums even{zero, zero, zero, zero}, odd{zero, zero, zero, zero};
    int64_t p = 0;
    for (; p + 1 < pixels; p += 2) {
      add_wide(even, _mm512_sub_ps(load16(x + p * s + l), base));
      add_wide(odd, _mm512_sub_ps(load16(x + (p + 1) * s + l), base));
    }
    if (p < pixels) add_wide(even, _mm512_sub_ps(load16(x + p * s + l), base));
    flush_wide(sum + l, _mm512_add_pd(even.sum_lo, odd.sum_lo),
               _mm512_add_pd(even.sum_hi, odd.sum_hi));
    flush_wide(square + l, _mm512_add_pd(even.square_lo, odd.square_lo),
               _mm512_add_pd(even.square_hi, odd.square_hi));
  }
}

DP_AVX512BF16 void normalize_gelu_unit(const uint16_t* x, uint16_t* y, int64_t n, const float* mean,
                                       const float* scale, const float* beta, int64_t s) {
  for (int64_t o = 0; o < n; o += kLanes) {
    const int64_t l = o % s;
    const __m512 v = _mm512_fmadd_ps(_mm512_sub_ps(load16(x + o), _mm512_loadu_ps(mean + l)),
                                     _mm512_loadu_ps(scale + l), _mm512_loadu_ps(beta + l));
    store_bits16(y + o, round_bf16(gelu(rounded_bf16(v))));
  }
}

// Pass 1 of backward over one unit: dz = dy * GELU'(z) rounded, stored, and summed with
// dz * xhat per lane.
struct SlopeConstants {
  const float *mean, *scale, *beta, *invstd;  // per lane of the unit
};
DP_AVX512BF16 void slope_sums_unit(const uint16_t* x, const uint16_t* dy, uint16_t* dz,
                                   int64_t pixels, int64_t s, const SlopeConstants& k, double* sum,
                                   double* sum_xhat) {
  const float *mean = k.mean, *scale = k.scale, *beta = k.beta, *invstd = k.invstd;
  float unit_dz[kMaxChannels], unit_dz_xhat[kMaxChannels];  // this unit's sums, per lane
  std::fill(unit_dz, unit_dz + s, 0.f);
  std::fill(unit_dz_xhat, unit_dz_xhat + s, 0.f);
  for (int64_t p = 0; p < pixels; ++p)
    for (int64_t l = 0; l < s; l += kLanes) {
      const int64_t o = p * s + l;
      const __m512 centred = _mm512_sub_ps(load16(x + o), _mm512_loadu_ps(mean + l));
      const __m512 z = rounded_bf16(
          _mm512_fmadd_ps(centred, _mm512_loadu_ps(scale + l), _mm512_loadu_ps(beta + l)));
      const __m256i bits = round_bf16(_mm512_mul_ps(load16(dy + o), gelu_slope(z)));
      store_bits16(dz + o, bits);
      const __m512 g = widen_bf16(bits);
      const __m512 xhat = _mm512_mul_ps(centred, _mm512_loadu_ps(invstd + l));
      _mm512_storeu_ps(unit_dz + l, _mm512_add_ps(_mm512_loadu_ps(unit_dz + l), g));
      _mm512_storeu_ps(unit_dz_xhat + l,
                       _mm512_fmadd_ps(g, xhat, _mm512_loadu_ps(unit_dz_xhat + l)));
    }
  for (int64_t l = 0; l < s; ++l) {
    sum[l] += unit_dz[l];
    sum_xhat[l] += unit_dz_xhat[l];
  }
}

// Pass 2: dx = gamma invstd (dz - mean(dz) - xhat mean(dz xhat)), rounded.
struct InputGradConstants {
  const float *mean, *invstd, *gain, *mean_dz, *mean_dz_xhat;  // per lane of the unit
};
DP_AVX512BF16 void input_grad_unit(const uint16_t* x, const uint16_t* dz, uint16_t* dx, int64_t n,
                                   int64_t s, const InputGradConstants& k) {
  const float *mean = k.mean, *invstd = k.invstd, *gain = k.gain, *mean_dz = k.mean_dz,
              *mean_dz_xhat = k.mean_dz_xhat;
  for (int64_t o = 0; o < n; o += kLanes) {
    const int64_t l = o % s;
    const __m512 xhat = _mm512_mul_ps(_mm512_sub_ps(load16(x + o), _mm512_loadu_ps(mean + l)),
                                      _mm512_loadu_ps(invstd + l));
    const __m512 centred = _mm512_sub_ps(load16(dz + o), _mm512_loadu_ps(mean_dz + l));
    const __m512 v = _mm512_fnmadd_ps(xhat, _mm512_loadu_ps(mean_dz_xhat + l), centred);
    store_bits16(dx + o, round_bf16(_mm512_mul_ps(_mm512_loadu_ps(gain + l), v)));
  }
}

// Per-channel constants of both passes, in scratch.per_channel. Forward and backward take them
// from the same saved statistics by the same arithmetic, so backward rebuilds the very z that
// forward rounded.
struct Normalization {
  float *mean, *scale, *beta, *invstd;  // scale = gamma * invstd
  float *mean_dz, *mean_dz_xhat;        // backward's, filled there
};

Normalization normalization(const BatchNormGeometry& g, const Tensor& gamma, const Tensor& beta,
                            const Tensor& saved_mean, const Tensor& saved_var,
                            BatchNormGeluScratch& scratch) {
  scratch.per_channel.resize(static_cast<size_t>(6 * g.c));
  float* k = scratch.per_channel.data();
  const Normalization n{k, k + g.c, k + 2 * g.c, k + 3 * g.c, k + 4 * g.c, k + 5 * g.c};
  for (int64_t c = 0; c < g.c; ++c) {
    const double invstd = 1.0 / std::sqrt(static_cast<double>(saved_var.data()[c]) + g.eps);
    n.mean[c] = saved_mean.data()[c];
    n.scale[c] = static_cast<float>(gamma.data<float>()[c] * invstd);
    n.beta[c] = beta.data<float>()[c];
    n.invstd[c] = static_cast<float>(invstd);
  }
  return n;
}

}  // namespace

bool batchnorm_gelu_applies(const BatchNormGeometry& g, DType dtype) {
  return simd::cpu_has_avx512_bf16() && dtype == DType::bf16 && !g.fuse_relu &&
         g.c % kLanes == 0 && g.c <= kMaxChannels && g.n * g.h * g.w > 1;
}

void batchnorm_gelu_forward(const BatchNormGeometry& g, const Tensor& x, const Tensor& gamma,
                            const Tensor& beta, Tensor& y, Tensor& saved_mean, Tensor& saved_var,
                            BatchNormGeluScratch& scratch) {
  DP_CHECK(batchnorm_gelu_applies(g, x.dtype()), "batch norm + GELU: no fused kernel for {} {}",
           g.c, x.dtype() == DType::bf16 ? "bf16 channels" : "channels of this type");
  const Units units(g, x.layout());
  const uint16_t* xs = x.data<uint16_t>();
  // The shift: each channel's first value (shifted_moments says why).
  std::vector<float>& shift = scratch.shift;
  shift.resize(g.c);
  for (int64_t u = 0; u < units.planes; ++u)
    for (int64_t l = 0; l < units.stride; ++l)
      shift[units.channel0(u) + l] = bf16_value(xs[u * units.size() + l]);
  for_each_unit(units, g.c, scratch, [&](int thread, int64_t u) {
    const int64_t c0 = units.channel0(u);
    double* sums = thread_sums(scratch, thread, g.c);
    moments_unit(xs + u * units.size(), units.pixels, units.stride, shift.data() + c0, sums + c0,
                 sums + g.c + c0);
  });
  std::vector<double> sum, square;
  total_sums(scratch, g.c, sum, square);

  saved_mean.ensure({g.c});
  saved_var.ensure({g.c});
  const double count = static_cast<double>(g.n * g.h * g.w);
  for (int64_t c = 0; c < g.c; ++c) {
    const ChannelMoments moments = shifted_moments(shift[c], sum[c], square[c], count);
    saved_mean.data()[c] = static_cast<float>(moments.mean);
    saved_var.data()[c] = static_cast<float>(moments.variance);
  }
  const Normalization norm = normalization(g, gamma, beta, saved_mean, saved_var, scratch);
  y.ensure(x.shape(), DType::bf16);
  y.set_layout(x.layout());
  uint16_t* ys = y.data<uint16_t>();
  for_each_unit(units, g.c, scratch, [&](int, int64_t u) {
    const int64_t c0 = units.channel0(u), at = u * units.size();
    normalize_gelu_unit(xs + at, ys + at, units.size(), norm.mean + c0, norm.scale + c0,
                        norm.beta + c0, units.stride);
  });
}

void batchnorm_gelu_backward(const BatchNormGeometry& g, const Tensor& x, const Tensor& dy,
                             const Tensor& gamma, const Tensor& beta, const Tensor& saved_mean,
                             const Tensor& saved_var, Tensor& dx, Tensor& dgamma, Tensor& dbeta,
                             BatchNormGeluScratch& scratch) {
  DP_CHECK(batchnorm_gelu_applies(g, x.dtype()) && dy.dtype() == DType::bf16,
           "batch norm + GELU backward: no fused kernel for these operands");
  DP_CHECK(dy.layout() == x.layout(), "batch norm + GELU backward: dy is not in x's layout");
  const Units units(g, x.layout());
  const Normalization norm = normalization(g, gamma, beta, saved_mean, saved_var, scratch);
  scratch.dz.ensure({x.numel()}, DType::bf16);
  const uint16_t *xs = x.data<uint16_t>(), *dys = dy.data<uint16_t>();
  uint16_t* dz = scratch.dz.data<uint16_t>();
  for_each_unit(units, g.c, scratch, [&](int thread, int64_t u) {
    const int64_t c0 = units.channel0(u), at = u * units.size();
    double* sums = thread_sums(scratch, thread, g.c);
    slope_sums_unit(xs + at, dys + at, dz + at, units.pixels, units.stride,
                    {norm.mean + c0, norm.scale + c0, norm.beta + c0, norm.invstd + c0}, sums + c0,
                    sums + g.c + c0);
  });
  std::vector<double> sum, sum_xhat;
  total_sums(scratch, g.c, sum, sum_xhat);

  dgamma.ensure({g.c});
  dbeta.ensure({g.c});
  const double count = static_cast<double>(g.n * g.h * g.w);
  for (int64_t c = 0; c < g.c; ++c) {
    dbeta.data()[c] = static_cast<float>(sum[c]);
    dgamma.data()[c] = static_cast<float>(sum_xhat[c]);
    norm.mean_dz[c] = static_cast<float>(sum[c] / count);
    norm.mean_dz_xhat[c] = static_cast<float>(sum_xhat[c] / count);
  }
  dx.ensure(x.shape(), DType::bf16);
  dx.set_layout(x.layout());
  uint16_t* dxs = dx.data<uint16_t>();
  for_each_unit(units, g.c, scratch, [&](int, int64_t u) {
    const int64_t c0 = units.channel0(u), at = u * units.size();
    input_grad_unit(xs + at, dz + at, dxs + at, units.size(), units.stride,
                    {norm.mean + c0, norm.invstd + c0, norm.scale + c0, norm.mean_dz + c0,
                     norm.mean_dz_xhat + c0});
  });
}

}  // namespace dp::cpu
