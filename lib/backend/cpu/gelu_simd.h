// GELU (erf form) and its slope on 16 f32 lanes, with AVX-512: the CPU backend's own bf16
// GELU kernels (gelu_bf16.h, batchnorm_gelu.h, patch_conv_gelu.h) compute in f32 and round once, as
// PyTorch's and oneDNN's bf16 GELU do. Callers check the CPU before calling.
#pragma once

#include <cstddef>

#include "backend/cpu/simd_lanes.h"

namespace dp::cpu::simd {

DP_AVX512BF16 inline __m512 splat(float v) { return _mm512_set1_ps(v); }

// e^x: x = n ln2 + r with |r| <= ln2 / 2 (ln2 in two parts, so r keeps its digits), e^r by
// Cephes expf's minimax polynomial (relative error ~1e-7), 2^n applied by scalef.
DP_AVX512BF16 inline __m512 exp16(__m512 x) {
  // min and max return their second operand where either is NaN: x second keeps a NaN.
  x = _mm512_max_ps(splat(-87.f), _mm512_min_ps(splat(88.f), x));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, splat(1.44269504f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, splat(0.693359375f), x);
  r = _mm512_fnmadd_ps(n, splat(-2.12194440e-4f), r);
  __m512 p = splat(1.9875691500e-4f);
  for (float c :
       {1.3981999507e-3f, 8.3334519073e-3f, 4.1665795894e-2f, 1.6666665459e-1f, 5.0000001201e-1f})
    p = _mm512_fmadd_ps(p, r, splat(c));
  p = _mm512_fmadd_ps(_mm512_mul_ps(p, r), r, _mm512_add_ps(r, splat(1.f)));
  return _mm512_scalef_ps(p, n);
}

// Phi(z), the standard normal CDF: erfc(u) / 2 with u = |z| / sqrt 2 for z < 0, and
// 1 - erfc(u) / 2 for z >= 0. erfc(u) = t exp(-u^2 + P(t)), t = 1 / (1 + u / 2), P the
// Chebyshev fit (fractional error < 1.2e-7 for every u >= 0, so both tails keep their digits;
// in f32 the exponent's rounding adds about 6e-8 u^2, 6e-6 at z = -10).
DP_AVX512BF16 inline __m512 normal_cdf(__m512 z) {
  const __m512 one = splat(1.f), half = splat(0.5f);
  const __m512 u = _mm512_mul_ps(_mm512_abs_ps(z), splat(0.70710678f));
  const __m512 t = _mm512_div_ps(one, _mm512_fmadd_ps(half, u, one));
  __m512 p = splat(0.17087277f);
  for (float c : {-0.82215223f, 1.48851587f, -1.13520398f, 0.27886807f, -0.18628806f, 0.09678418f,
                  0.37409196f, 1.00002368f, -1.26551223f})
    p = _mm512_fmadd_ps(p, t, splat(c));
  const __m512 half_erfc = _mm512_mul_ps(_mm512_mul_ps(half, t), exp16(_mm512_fnmadd_ps(u, u, p)));
  const __mmask16 upper = _mm512_cmp_ps_mask(z, _mm512_setzero_ps(), _CMP_GE_OQ);
  return _mm512_mask_sub_ps(half_erfc, upper, one, half_erfc);
}

// GELU'(z) = Phi(z) + z phi(z), phi(z) = exp(-z^2 / 2) / sqrt(2 pi).
DP_AVX512BF16 inline __m512 erfc_gelu_slope(__m512 z) {
  const __m512 density =
      _mm512_mul_ps(splat(0.39894228f), exp16(_mm512_mul_ps(splat(-0.5f), _mm512_mul_ps(z, z))));
  return _mm512_fmadd_ps(z, density, normal_cdf(z));
}

// For |z| <= 3 (all but ~0.3% of a batch norm's outputs): Phi(z) = 1/2 + z A(z^2) and
// GELU'(z) = 1/2 + z C(z^2), C(s) = A(s) + phi(sqrt s), A and C least-squares Chebyshev fits in
// w = 2 z^2 / 9 - 1 (highest power first; tests/bench/fit_gelu_polynomials.py). In f32 both are
// within 1e-7 and 2e-7 of the true values, as close as the erfc form's; one polynomial each, where
// the erfc form takes two polynomials, a division and one or two exps. Lanes beyond 3 take the erfc
// form.
constexpr float kNearLimit = 3.f;
constexpr float kNearCdf[] = {2.493053444e-06f,  -1.260531189e-05f, 5.211500320e-05f,
                              -2.170080697e-04f, 8.180111181e-04f,  -2.729672240e-03f,
                              8.021458052e-03f,  -2.057101950e-02f, 4.597224668e-02f,
                              -9.283248335e-02f, 2.277131677e-01f};
constexpr float kNearSlope[] = {-9.208675692e-06f, 4.569878729e-05f,  -1.814955176e-04f,
                                7.317583659e-04f,  -2.654464450e-03f, 8.398033679e-03f,
                                -2.293485776e-02f, 5.292286351e-02f,  -1.003970355e-01f,
                                1.524068266e-01f,  -1.874409467e-01f, 2.697613835e-01f};

// 1/2 + z P(w) by Horner, w = 2 z^2 / 9 - 1.
template <size_t N>
DP_AVX512BF16 inline __m512 half_plus_odd(const float (&coefficients)[N], __m512 z) {
  const __m512 w = _mm512_fmsub_ps(_mm512_mul_ps(z, z), splat(2.f / 9.f), splat(1.f));
  __m512 p = splat(coefficients[0]);
  for (size_t k = 1; k < N; ++k) p = _mm512_fmadd_ps(p, w, splat(coefficients[k]));
  return _mm512_fmadd_ps(z, p, splat(0.5f));
}

// Lanes with |z| > 3 (NaN is not) need the erfc form.
DP_AVX512BF16 inline __mmask16 far_lanes(__m512 z) {
  return _mm512_cmp_ps_mask(_mm512_abs_ps(z), splat(kNearLimit), _CMP_GT_OQ);
}

DP_AVX512BF16 inline __m512 gelu(__m512 z) {
  __m512 cdf = half_plus_odd(kNearCdf, z);
  const __mmask16 far = far_lanes(z);
  if (far) cdf = _mm512_mask_mov_ps(cdf, far, normal_cdf(z));
  return _mm512_mul_ps(z, cdf);
}

DP_AVX512BF16 inline __m512 gelu_slope(__m512 z) {
  __m512 slope = half_plus_odd(kNearSlope, z);
  const __mmask16 far = far_lanes(z);
  if (far) slope = _mm512_mask_mov_ps(slope, far, erfc_gelu_slope(z));
  return slope;
}

}  // namespace dp::cpu::simd
