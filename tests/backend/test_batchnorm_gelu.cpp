// The CPU backend's fused batch norm + GELU on bf16 activations (cpu/batchnorm_gelu.h): against
// the two ops composed on the same backend (oneDNN's batch norm and GELU, each rounding once)
// and against a naive double-precision loop with the same rounding points (std::erfc's GELU),
// forward and backward, in NHWC and nChw16c, on airbench's shapes and far into GELU's tails.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "backend/backend.h"
#include "backend/cpu/batchnorm_gelu.h"
#include "backend/cpu/simd_lanes.h"
#include "bf16_host.h"
#include "gelu_reference.h"
#include "test_util.h"

namespace dp::test {
namespace {

// The bf16 values an f32 computation of z = a + b may round to: those of a + b -+ 1e-5 (|a| +
// |b|), the f32 noise of the statistics' sums and of the cancellation where z is near 0. z is
// rounded before the GELU, so where it lies near a tie between two bf16 values y may take either
// one's GELU, which far in the negative tail differ by several bf16 steps of y.
std::vector<double> z_candidates(double a, double b) {
  const double noise = 1e-5 * (std::abs(a) + std::abs(b));
  return {rounded(a + b - noise), rounded(a + b + noise)};
}

// The pair in double on NHWC f32 values (bf16-exact), rounded where the kernels round: z after
// the batch norm, y, dz and dx after their ops; per element the results for each candidate z.
struct Naive {
  std::vector<std::vector<double>> y, dx;  // per element, per candidate z
  std::vector<double> dx_noise;            // per element: f32 noise in dx's terms
  Tensor dgamma, dbeta;
};
Naive naive_batchnorm_gelu(const BatchNormGeometry& g, const Tensor& x, const Tensor& dy,
                           const Tensor& gamma, const Tensor& beta) {
  const int64_t rows = g.n * g.h * g.w, c = g.c;
  Naive r{std::vector<std::vector<double>>(x.numel()), std::vector<std::vector<double>>(x.numel()),
          std::vector<double>(x.numel()), Tensor::empty({c}), Tensor::empty({c})};
  for (int64_t k = 0; k < c; ++k) {
    double sum = 0, square = 0;
    for (int64_t i = 0; i < rows; ++i) sum += x.data()[i * c + k];
    const double mean = sum / rows;
    for (int64_t i = 0; i < rows; ++i) square += std::pow(x.data()[i * c + k] - mean, 2);
    const double invstd = 1 / std::sqrt(square / rows + g.eps);
    std::vector<std::vector<double>> dz(rows);
    std::vector<double> xhat(rows);
    double sum_dz = 0, sum_dz_xhat = 0, sum_abs_dz = 0, sum_abs_dz_xhat = 0;
    for (int64_t i = 0; i < rows; ++i) {
      const int64_t e = i * c + k;
      xhat[i] = (x.data()[e] - mean) * invstd;
      for (double z : z_candidates(gamma.data()[k] * xhat[i], beta.data()[k])) {
        r.y[e].push_back(rounded(gelu(z)));
        dz[i].push_back(rounded(dy.data()[e] * gelu_slope(z)));
      }
      sum_dz += dz[i][0];
      sum_dz_xhat += dz[i][0] * xhat[i];
      sum_abs_dz += std::abs(dz[i][0]);
      sum_abs_dz_xhat += std::abs(dz[i][0] * xhat[i]);
    }
    const double gain = std::abs(gamma.data()[k] * invstd);
    for (int64_t i = 0; i < rows; ++i) {
      for (double d : dz[i])
        r.dx[i * c + k].push_back(
            rounded(gamma.data()[k] * invstd * (d - sum_dz / rows - xhat[i] * sum_dz_xhat / rows)));
      // The means carry more: a tie in one dz's rounding moves a sum by a bf16 step of that
      // dz, so their noise scales with the sums of magnitudes.
      r.dx_noise[i * c + k] =
          gain * (1e-5 * std::abs(dz[i][0]) +
                  1e-3 * (sum_abs_dz + std::abs(xhat[i]) * sum_abs_dz_xhat) / rows);
    }
    r.dbeta.data()[k] = static_cast<float>(sum_dz);
    r.dgamma.data()[k] = static_cast<float>(sum_dz_xhat);
  }
  return r;
}

// got (NHWC f32 values of bf16) against the naive candidates: every element within the range
// of its candidates widened by one bf16 step (and `noise`, where given), and at least `share`
// exactly one of them.
void expect_near_candidates(const Tensor& got, const std::vector<std::vector<double>>& want,
                            const std::vector<double>& noise, double share,
                            const std::string& what) {
  int64_t exact = 0, far = 0;
  for (int64_t i = 0; i < got.numel(); ++i) {
    const double v = got.data()[i];
    const auto [lo, hi] = std::minmax_element(want[i].begin(), want[i].end());
    const double slack = std::max({std::abs(*lo), std::abs(*hi), 1e-30}) / 128 +  // a bf16 step
                         (noise.empty() ? 0.0 : noise[i]);
    exact += std::find(want[i].begin(), want[i].end(), v) != want[i].end();
    if ((v < *lo - slack || v > *hi + slack) && far++ < 3)
      ADD_FAILURE() << what << ": element " << i << " is " << v << ", the naive loop gives " << *lo
                    << " to " << *hi;
  }
  EXPECT_EQ(far, 0) << what;
  EXPECT_GE(exact, share * got.numel()) << what << ": exactly the naive result";
}

// got against the composed ops' result (both NHWC f32 values of bf16): at least 99% equal (ties
// of z's rounding, and f32 sums in another order, move the rest).
void expect_mostly_equal(const Tensor& got, const Tensor& want, const std::string& what) {
  int64_t equal = 0;
  for (int64_t i = 0; i < got.numel(); ++i) equal += got.data()[i] == want.data()[i];
  EXPECT_GE(equal, got.numel() * 99 / 100) << what;
}

class CpuBatchNormGelu : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!cpu::simd::cpu_has_avx512_bf16())
      GTEST_SKIP() << "this CPU lacks AVX512-BF16: the pair runs as two ops";
    ASSERT_TRUE(cpu::batchnorm_gelu_applies({2, 2, 2, 16}, DType::bf16));
    be = make_cpu_backend(0, false, CpuBf16::activations);
  }
  // A bf16 host tensor of `values` (already bf16-exact) in `layout`.
  static Tensor bf16_in(const Tensor& values, Layout layout) {
    Tensor b = as_bf16(layout == Layout::nchw16c ? in_blocked_order(values) : values);
    b.set_layout(layout);
    return b;
  }
  // A bf16 tensor in any layout as NHWC f32 values (the download reorders).
  Tensor nhwc_values(const Tensor& t) { return download_as_f32(*be, t); }
  // spread: gamma's and beta's range; composed_y: compare y with the composed ops too (not in
  // the tails, where oneDNN's GELU keeps fewer digits than the naive loop's std::erfc).
  void check(const BatchNormGeometry& g, Layout layout, float spread, bool composed_y = true);
  std::unique_ptr<Backend> be;
  std::mt19937 gen{17};
};

void CpuBatchNormGelu::check(const BatchNormGeometry& g, Layout layout, float spread,
                             bool composed_y) {
  SCOPED_TRACE(fmt::format("{}x{}x{}x{} {} spread {}", g.n, g.h, g.w, g.c,
                           layout == Layout::nhwc ? "NHWC" : "nChw16c", spread));
  const Tensor xv = rounded_to_bf16(random_tensor({g.n, g.h, g.w, g.c}, gen, -1.f, 2.f));
  const Tensor dyv = rounded_to_bf16(random_tensor(xv.shape(), gen));
  const Tensor gamma = random_tensor({g.c}, gen, spread / 2, spread);
  const Tensor beta = random_tensor({g.c}, gen, -spread / 2, spread / 2);
  const Tensor x = bf16_in(xv, layout), dy = bf16_in(dyv, layout);
  ASSERT_TRUE(be->fuses_batchnorm_gelu(g, DType::bf16));

  Tensor rm = Tensor::zeros({g.c}), rv = Tensor::zeros({g.c}), rm_ref = copy_of(rm),
         rv_ref = copy_of(rv);
  Tensor y, mean, var, z_ref, y_ref, mean_ref, var_ref, ws_ref;
  be->batchnorm_gelu_forward_train(g, x, gamma, beta, rm, rv, y, mean, var);
  be->batchnorm_forward_train(g, x, gamma, beta, rm_ref, rv_ref, z_ref, mean_ref, var_ref, ws_ref);
  be->gelu_forward(z_ref, y_ref);
  EXPECT_EQ(y.layout(), layout);
  EXPECT_CLOSE(mean, mean_ref, 1e-5);
  EXPECT_CLOSE(var, var_ref, 1e-5);
  EXPECT_CLOSE(rm, rm_ref, 1e-5);
  EXPECT_CLOSE(rv, rv_ref, 1e-5);

  Tensor dx, dgamma, dbeta, dz_ref, dx_ref, dgamma_ref, dbeta_ref;
  be->batchnorm_gelu_backward(g, x, dy, gamma, beta, mean, var, dx, dgamma, dbeta);
  be->gelu_backward(z_ref, dy, dz_ref);
  be->batchnorm_backward(g, x, dz_ref, gamma, beta, mean_ref, var_ref, ws_ref, dx_ref, dgamma_ref,
                         dbeta_ref);
  EXPECT_EQ(dx.layout(), layout);
  if (layout == Layout::nchw16c) {  // a gradient arriving in NHWC is reordered, not misread
    Tensor dx2, dgamma2, dbeta2;
    be->batchnorm_gelu_backward(g, x, bf16_in(dyv, Layout::nhwc), gamma, beta, mean, var, dx2,
                                dgamma2, dbeta2);
    EXPECT_EQ(relative_max_error(download_as_f32(*be, dx2), download_as_f32(*be, dx)), 0.0);
  }

  const Naive naive = naive_batchnorm_gelu(g, xv, dyv, gamma, beta);
  const Tensor y_nhwc = nhwc_values(y), dx_nhwc = nhwc_values(dx);
  if (composed_y) expect_mostly_equal(y_nhwc, nhwc_values(y_ref), "y against the composed ops");
  expect_near_candidates(y_nhwc, naive.y, {}, 0.99, "y against the naive loop");
  expect_mostly_equal(dx_nhwc, nhwc_values(dx_ref), "dx against the composed ops");
  // 98%: the f32 means of dz and dz * xhat move a few more dx across a rounding tie.
  expect_near_candidates(dx_nhwc, naive.dx, naive.dx_noise, 0.98, "dx against the naive loop");
  // A tie in one dz's rounding moves a sum by a bf16 step of that dz: ~1e-4 of these sums.
  EXPECT_CLOSE(dbeta, dbeta_ref, 1e-3);
  EXPECT_CLOSE(dgamma, dgamma_ref, 1e-3);
  EXPECT_CLOSE(dbeta, naive.dbeta, 1e-3);
  EXPECT_CLOSE(dgamma, naive.dgamma, 1e-3);
}

TEST_F(CpuBatchNormGelu, AirbenchsShapesMatchTheComposedOpsAndTheNaiveLoop) {
  for (const BatchNormGeometry& g : {BatchNormGeometry{16, 15, 15, 64, 1e-12f, 0.4f},
                                     BatchNormGeometry{16, 7, 7, 256, 1e-12f, 0.4f},
                                     BatchNormGeometry{16, 3, 3, 256, 1e-12f, 0.4f}})
    check(g, Layout::nhwc, 2.f);
}

TEST_F(CpuBatchNormGelu, BlockedLayout) { check({4, 8, 8, 32, 1e-5f, 0.1f}, Layout::nchw16c, 2.f); }

// gamma up to 8 puts z far into both tails, where GELU's value or slope is tiny.
TEST_F(CpuBatchNormGelu, GelusTails) {
  check({8, 5, 5, 48, 1e-5f, 0.1f}, Layout::nhwc, 8.f, /*composed_y=*/false);
}

TEST_F(CpuBatchNormGelu, TakenForBf16InBlocksOf16WithoutAFusedRelu) {
  EXPECT_FALSE(be->fuses_batchnorm_gelu({8, 7, 7, 64}, DType::f32));
  EXPECT_FALSE(be->fuses_batchnorm_gelu({8, 7, 7, 24}, DType::bf16));  // not 16-channel blocks
  BatchNormGeometry relu{8, 7, 7, 64};
  relu.fuse_relu = true;
  EXPECT_FALSE(be->fuses_batchnorm_gelu(relu, DType::bf16));
}

}  // namespace
}  // namespace dp::test
