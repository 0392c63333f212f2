// The CPU backend's convolution + bias + GELU over small patches (cpu/patch_conv_gelu.h, for
// airbench's whitening layer) against a naive double loop with the kernel's rounding points:
// input and weights rounded to bf16, the sum and bias exact, z rounded once, y = GELU(z)
// rounded. Through the backend, for f32 and bf16 inputs, with and without z, and for output
// channels that fill one register, one and a half, and two and a half.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "backend/backend.h"
#include "backend/cpu/patch_conv_gelu.h"
#include "backend/cpu/simd_lanes.h"
#include "bf16_host.h"
#include "gelu_reference.h"
#include "test_util.h"

namespace dp::test {
namespace {

// z before rounding, per output element (NHWC), from bf16-rounded x and w, and the sum of its
// terms' magnitudes (the scale of f32's rounding noise in the sum).
struct NaiveZ {
  std::vector<double> z, magnitude;
};
NaiveZ naive_z(const Conv2dGeometry& g, const Tensor& x, const Tensor& w, const Tensor& b) {
  const int64_t oh = g.out_h(), ow = g.out_w(), k = g.kernel;
  NaiveZ r{std::vector<double>(static_cast<size_t>(g.n * oh * ow * g.c_out)),
           std::vector<double>(static_cast<size_t>(g.n * oh * ow * g.c_out))};
  for (int64_t n = 0; n < g.n; ++n)
    for (int64_t i = 0; i < oh; ++i)
      for (int64_t j = 0; j < ow; ++j)
        for (int64_t o = 0; o < g.c_out; ++o) {
          double s = b.data()[o], m = std::abs(s);
          for (int64_t c = 0; c < g.c_in; ++c)
            for (int64_t kh = 0; kh < k; ++kh)
              for (int64_t kw = 0; kw < k; ++kw) {
                const double t =
                    rounded(x.data()[((n * g.h + i + kh) * g.w + j + kw) * g.c_in + c]) *
                    rounded(w.data()[((o * g.c_in + c) * k + kh) * k + kw]);
                s += t;
                m += std::abs(t);
              }
          const int64_t e = ((n * oh + i) * ow + j) * g.c_out + o;
          r.z[e] = s;
          r.magnitude[e] = m;
        }
  return r;
}

class CpuPatchConvGelu : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!cpu::simd::cpu_has_avx512_bf16())
      GTEST_SKIP() << "this CPU lacks AVX512-BF16: the layer runs as three ops";
    ASSERT_TRUE(cpu::patch_conv_gelu_applies({1, 2, 2, 3, 24, 2, 1, 0}, DType::f32));
    be = make_cpu_backend(0, false, CpuBf16::activations);
  }
  void check(const Conv2dGeometry& g, DType x_dtype) {
    SCOPED_TRACE(fmt::format("{}x{}x{} k{} -> {} {}", g.h, g.w, g.c_in, g.kernel, g.c_out,
                             x_dtype == DType::bf16 ? "bf16" : "f32"));
    ASSERT_TRUE(be->fuses_conv_bias_gelu(g, x_dtype));
    const Tensor x = random_tensor({g.n, g.h, g.w, g.c_in}, gen, -2.f, 2.f);
    const Tensor w = random_tensor({g.c_out, g.c_in, g.kernel, g.kernel}, gen, -1.f, 1.f);
    const Tensor b = random_tensor({g.c_out}, gen, -0.5f, 0.5f);
    const Tensor x_in = x_dtype == DType::bf16 ? as_bf16(x) : x;
    Tensor z, y, y_alone;
    be->conv_bias_gelu_forward(g, x_in, w, b, &z, y);
    be->conv_bias_gelu_forward(g, x_in, w, b, nullptr, y_alone);
    EXPECT_EQ(relative_max_error(download_as_f32(*be, y_alone), download_as_f32(*be, y)), 0.0)
        << "y does not depend on whether z is kept";
    const NaiveZ want = naive_z(g, x, w, b);
    const Tensor zg = download_as_f32(*be, z), yg = download_as_f32(*be, y);
    int64_t z_exact = 0, y_exact = 0;
    for (int64_t i = 0; i < zg.numel(); ++i) {
      // f32 sums in another order: z within a bf16 step (and the f32 noise of its terms) of
      // the exact sum rounded, and y the GELU of the z actually kept, rounded (the kernel's
      // GELU: within one step).
      const double zw = rounded(want.z[i]), zv = zg.data()[i];
      z_exact += zv == zw;
      ASSERT_LE(std::abs(zv - zw), std::abs(zw) / 128 + 1e-6 * want.magnitude[i])
          << "z element " << i;
      const double yw = rounded(gelu(zv)), yv = yg.data()[i];
      y_exact += yv == yw;
      ASSERT_LE(std::abs(yv - yw), std::max(std::abs(yw), 1e-30) / 128) << "y element " << i;
    }
    EXPECT_GE(z_exact, zg.numel() * 995 / 1000);
    EXPECT_GE(y_exact, yg.numel() * 995 / 1000);
  }
  std::unique_ptr<Backend> be;
  std::mt19937 gen{23};
};

TEST_F(CpuPatchConvGelu, AirbenchsWhiteningMatchesTheNaiveLoop) {
  check({4, 32, 32, 3, 24, 2, 1, 0}, DType::f32);
  check({4, 32, 32, 3, 24, 2, 1, 0}, DType::bf16);
}

TEST_F(CpuPatchConvGelu, OtherPatchesAndWidths) {
  check({3, 9, 7, 3, 16, 3, 1, 0}, DType::f32);   // 27 taps, one full register
  check({2, 6, 5, 8, 40, 2, 1, 0}, DType::f32);   // 32 taps, two and a half registers
  check({2, 5, 5, 1, 64, 1, 1, 0}, DType::bf16);  // 1x1, four registers
}

TEST_F(CpuPatchConvGelu, TakenOnlyWhereTheKernelFits) {
  EXPECT_FALSE(be->fuses_conv_bias_gelu({1, 8, 8, 3, 24, 2, 2, 0}, DType::f32));  // stride
  EXPECT_FALSE(be->fuses_conv_bias_gelu({1, 8, 8, 3, 24, 3, 1, 1}, DType::f32));  // padding
  EXPECT_FALSE(be->fuses_conv_bias_gelu({1, 8, 8, 4, 24, 3, 1, 0}, DType::f32));  // 36 taps
  EXPECT_FALSE(be->fuses_conv_bias_gelu({1, 8, 8, 3, 72, 2, 1, 0}, DType::f32));  // 72 out
  EXPECT_FALSE(
      make_cpu_backend(0, false)->fuses_conv_bias_gelu({1, 8, 8, 3, 24, 2, 1, 0}, DType::f32))
      << "f32 activations compose the three ops";
}

}  // namespace
}  // namespace dp::test
