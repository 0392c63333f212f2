// The CPU backend's own bf16 GELU (cpu/gelu_bf16.h, the math of cpu/gelu_simd.h) against a
// naive double-precision loop with std::erfc, rounded once as the kernel rounds: forward and
// backward, across the polynomial's range (|x| <= 3) and the erfc form's beyond it, on lengths
// that end in a partial group of 16, in place, and with a dy in another layout.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>

#include "backend/backend.h"
#include "backend/cpu/gelu_bf16.h"
#include "backend/cpu/gelu_simd.h"
#include "backend/cpu/simd_lanes.h"
#include "bf16_host.h"
#include "gelu_reference.h"
#include "test_util.h"

namespace dp::test {
namespace {

// got (bf16 bits) against want (double, before rounding): every element within one bf16 step
// of want rounded, and at least 99.5% exactly it (f32 evaluation moves a value across a
// rounding tie now and then).
void expect_rounded(const Tensor& got, const std::vector<double>& want, const std::string& what) {
  int64_t exact = 0;
  for (int64_t i = 0; i < got.numel(); ++i) {
    const double v = bf16_value(got.data<uint16_t>()[i]), w = rounded(want[i]);
    exact += v == w;
    const double step = std::max(std::abs(w), 1e-30) / 128;
    ASSERT_LE(std::abs(v - w), step) << what << ": element " << i << " is " << v << ", want " << w;
  }
  EXPECT_GE(exact, got.numel() * 995 / 1000) << what;
}

// simd::gelu and simd::gelu_slope in f32 over n values, 16 at a time (n a multiple of 16).
DP_AVX512BF16 void simd_gelu(const float* z, float* y, float* slope, int64_t n) {
  for (int64_t i = 0; i < n; i += 16) {
    const __m512 v = _mm512_loadu_ps(z + i);
    _mm512_storeu_ps(y + i, cpu::simd::gelu(v));
    _mm512_storeu_ps(slope + i, cpu::simd::gelu_slope(v));
  }
}

class CpuGeluBf16 : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!cpu::simd::cpu_has_avx512_bf16())
      GTEST_SKIP() << "this CPU lacks AVX512-BF16: bf16 GELU runs on oneDNN";
    ASSERT_TRUE(cpu::gelu_bf16_applies(DType::bf16));  // a broken predicate fails, not skips
  }
  // n bf16 values uniform in [-range, range] (as bits) and their values.
  Tensor values(int64_t n, float range) { return as_bf16(random_tensor({n}, gen, -range, range)); }
  std::mt19937 gen{5};
};

TEST_F(CpuGeluBf16, ForwardAndBackwardMatchTheNaiveLoop) {
  // 8: far past both ends of the polynomial's range; 1.5: the common case. Lengths end in a
  // partial group and are large enough to be split over threads.
  for (float range : {1.5f, 8.f})
    for (int64_t n : {int64_t{37}, int64_t{100003}}) {
      const Tensor x = values(n, range), dy = values(n, 1.f);
      Tensor y, dx;
      cpu::gelu_bf16_forward(x, y);
      cpu::gelu_bf16_backward(x, dy, dx);
      std::vector<double> y_want(n), dx_want(n);
      for (int64_t i = 0; i < n; ++i) {
        const double v = bf16_value(x.data<uint16_t>()[i]);
        y_want[i] = gelu(v);
        dx_want[i] = bf16_value(dy.data<uint16_t>()[i]) * gelu_slope(v);
      }
      const std::string what = fmt::format("range {} n {}", range, n);
      expect_rounded(y, y_want, what + " y");
      expect_rounded(dx, dx_want, what + " dx");
    }
}

// The f32 math itself, before any bf16 rounding, over [-10, 10] in steps of 1/1024 (both
// sides of the polynomial's limit |z| = 3): Phi = GELU(z) / z within 1.2e-7 of the true value
// where the polynomial serves; beyond, GELU within 1.5e-7 (1 + z^2) of its size (the erfc
// form's exponent -z^2/2 + P carries f32's rounding, ~6e-8 z^2); GELU' within 3e-7.
TEST_F(CpuGeluBf16, F32MathWithinItsStatedError) {
  const int64_t n = 20480;
  std::vector<float> z(n), y(n), slope(n);
  for (int64_t i = 0; i < n; ++i) z[i] = -10.f + static_cast<float>(i) / 1024;
  simd_gelu(z.data(), y.data(), slope.data(), n);
  double cdf_error = 0, tail_error = 0, slope_error = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double v = z[i], cdf = normal_cdf(v);
    if (v == 0) continue;
    if (std::abs(v) <= 3)
      cdf_error = std::max(cdf_error, std::abs(y[i] / v - cdf));
    else
      tail_error = std::max(tail_error,
                            std::abs(y[i] - v * cdf) / std::abs(v * cdf) / (1.5e-7 * (1 + v * v)));
    slope_error = std::max(slope_error, std::abs(slope[i] - gelu_slope(v)));
  }
  EXPECT_LT(cdf_error, 1.2e-7);
  EXPECT_LT(tail_error, 1.0);  // in units of its bound
  EXPECT_LT(slope_error, 3e-7);
}

TEST_F(CpuGeluBf16, SpecialValues) {
  const float inf = std::numeric_limits<float>::infinity();
  const std::vector<float> special = {0.f, -0.f, 3.f, -3.f, inf, std::nanf("")};
  Tensor values_f32 = Tensor::empty({static_cast<int64_t>(special.size())});
  std::copy(special.begin(), special.end(), values_f32.data());
  Tensor x = as_bf16(values_f32), y;
  cpu::gelu_bf16_forward(x, y);
  const auto at = [&](int i) { return bf16_value(y.data<uint16_t>()[i]); };
  EXPECT_EQ(at(0), 0.f);
  EXPECT_EQ(at(1), 0.f);
  EXPECT_EQ(at(2), rounded(3 * normal_cdf(3)));  // the edge of the polynomial's range
  EXPECT_EQ(at(3), rounded(-3 * normal_cdf(-3)));
  EXPECT_EQ(at(4), inf);
  EXPECT_TRUE(std::isnan(at(5)));
}

TEST_F(CpuGeluBf16, InPlaceThroughTheBackendWithDyInAnotherLayout) {
  auto be = make_cpu_backend(0, false, CpuBf16::activations);
  const Tensor values_f32 = rounded_to_bf16(random_tensor({2, 4, 4, 32}, gen, -4.f, 4.f));
  Tensor x = as_bf16(values_f32), y = as_bf16(values_f32);
  Tensor y_want;
  cpu::gelu_bf16_forward(x, y_want);
  be->gelu_forward(y, y);  // in place
  EXPECT_EQ(relative_max_error(download_as_f32(*be, y), download_as_f32(*be, y_want)), 0.0);

  // dy in nChw16c against x in NHWC: backward reorders dy to x's layout first.
  const Tensor dy_f32 = rounded_to_bf16(random_tensor(x.shape(), gen));
  Tensor dy_blocked = as_bf16(in_blocked_order(dy_f32));
  dy_blocked.set_layout(Layout::nchw16c);
  Tensor dx, dx_want;
  be->gelu_backward(x, dy_blocked, dx);
  cpu::gelu_bf16_backward(x, as_bf16(dy_f32), dx_want);
  EXPECT_EQ(dx.layout(), Layout::nhwc);
  EXPECT_EQ(relative_max_error(download_as_f32(*be, dx), download_as_f32(*be, dx_want)), 0.0);
}

}  // namespace
}  // namespace dp::test
