// GELU (erf form) in double with std::erfc, and bf16 rounding of a double: the naive references
// the tests of the CPU backend's own bf16 GELU kernels (batch norm + GELU, the whitening layer's
// convolution + bias + GELU, GELU alone) compare against.
#pragma once

#include <cmath>

#include "core/bf16.h"

namespace dp::test {

// v rounded to the nearest bf16 (through f32, as a kernel's f32 result is rounded).
inline double rounded(double v) { return bf16_value(bf16_bits(static_cast<float>(v))); }
inline double normal_cdf(double z) { return 0.5 * std::erfc(-z / std::sqrt(2.0)); }
inline double gelu(double z) { return z * normal_cdf(z); }
inline double gelu_slope(double z) {
  return normal_cdf(z) + z * std::exp(-z * z / 2) / std::sqrt(2 * M_PI);
}

}  // namespace dp::test
