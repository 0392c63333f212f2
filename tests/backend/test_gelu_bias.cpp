// GELU (erf form), the constant scale and the per-channel bias: forward against naive double
// references (std::erf), gradients against central differences, the bias on both activation
// layouts of the CPU backend.
#include <gtest/gtest.h>

#include <cmath>
#include <numbers>

#include "backend/backend.h"
#include "test_util.h"

namespace dp::test {
namespace {

double gelu_ref(double x) { return 0.5 * x * (1.0 + std::erf(x / std::numbers::sqrt2)); }
double gelu_grad_ref(double x) {
  return 0.5 * (1.0 + std::erf(x / std::numbers::sqrt2)) +
         x * std::exp(-0.5 * x * x) / std::sqrt(2.0 * std::numbers::pi);
}

TEST(CpuGelu, ForwardAndBackwardMatchErfReference) {
  auto be = make_backend_under_test();
  std::mt19937 gen(51);
  // Large enough for the parallel path; values over [-6, 6] cover both tails.
  for (int64_t n : {97, 70001}) {
    Tensor x = random_tensor({n}, gen, -6.f, 6.f), r = random_tensor({n}, gen);
    Tensor y, dx;
    be->gelu_forward(x, y);
    be->gelu_backward(x, r, dx);
    double fwd_err = 0, bwd_err = 0;
    for (int64_t i = 0; i < n; ++i) {
      const double v = x.data()[i];
      fwd_err = std::max(fwd_err, std::abs(y.data()[i] - gelu_ref(v)) / (1.0 + std::abs(v)));
      bwd_err = std::max(bwd_err, std::abs(dx.data()[i] - r.data()[i] * gelu_grad_ref(v)));
    }
    // f32 arithmetic: a few ulps of values of magnitude <= 6.
    EXPECT_LT(fwd_err, 2e-6) << n;
    EXPECT_LT(bwd_err, 2e-6) << n;
  }
}

TEST(CpuGelu, FiniteDifferenceGradient) {
  auto be = make_backend_under_test();
  std::mt19937 gen(52);
  Tensor x = random_tensor({2, 5, 5, 24}, gen, -3.f, 3.f), r = random_tensor(x.shape(), gen);
  Tensor y, dx;
  be->gelu_backward(x, r, dx);
  expect_gradient("gelu dx", x, dx, [&] {
    be->gelu_forward(x, y);
    return dot(y, r);
  }, 1e-2f, 1e-3, 200);
}

TEST(CpuScale, ScalesOutOfPlaceAndInPlace) {
  auto be = make_backend_under_test();
  std::mt19937 gen(53);
  Tensor x = random_tensor({8, 10}, gen), y;
  be->scale(x, 1.f / 9.f, y);
  for (int64_t i = 0; i < x.numel(); ++i) ASSERT_EQ(y.data()[i], (1.f / 9.f) * x.data()[i]);
  Tensor z = copy_of(x);
  be->scale(z, -2.f, z);
  for (int64_t i = 0; i < x.numel(); ++i) ASSERT_EQ(z.data()[i], -2.f * x.data()[i]);
}

// Bias forward and backward on an NHWC activation: naive loops in double.
void check_channel_bias(Backend& be, const Shape& shape, bool blocked) {
  SCOPED_TRACE(fmt::format("{} {}", to_string(shape), blocked ? "nChw16c" : "NHWC"));
  std::mt19937 gen(54);
  const int64_t c = shape[3], rows = numel(shape) / c;
  Tensor b = random_tensor({c}, gen), y0 = random_tensor(shape, gen);
  Tensor dy0 = random_tensor(shape, gen);
  Tensor y = blocked ? in_blocked_order(y0) : copy_of(y0);
  be.channel_bias_forward(b, y);
  const Tensor got = in_nhwc_order(y);
  for (int64_t i = 0; i < y0.numel(); ++i)
    ASSERT_EQ(got.data()[i], y0.data()[i] + b.data()[i % c]) << i;

  Tensor dy = blocked ? in_blocked_order(dy0) : copy_of(dy0), db;
  be.channel_bias_backward(dy, db);
  Tensor ref = Tensor::zeros({c});
  for (int64_t k = 0; k < c; ++k) {
    double s = 0;
    for (int64_t r = 0; r < rows; ++r) s += dy0.data()[r * c + k];
    ref.data()[k] = static_cast<float>(s);
  }
  EXPECT_CLOSE(db, ref, 1e-5);
}

TEST(CpuChannelBias, ForwardAndBackwardMatchNaive) {
  auto be = make_backend_under_test();
  check_channel_bias(*be, {3, 31, 31, 24}, false);  // the whitening conv's output
  check_channel_bias(*be, {2, 3, 3, 5}, false);
#if !defined(DP_TEST_ON_CUDA) && !defined(DP_TEST_STAGED_CPU)
  check_channel_bias(*be, {2, 8, 8, 32}, true);  // the CPU backend's blocked layout
#endif
}

// The bias gradient is the derivative of sum(y * r) with respect to b.
TEST(CpuChannelBias, FiniteDifferenceGradient) {
  auto be = make_backend_under_test();
  std::mt19937 gen(55);
  const Shape shape{2, 4, 4, 6};
  Tensor b = random_tensor({6}, gen), x = random_tensor(shape, gen), r = random_tensor(shape, gen);
  Tensor db;
  be->channel_bias_backward(r, db);
  expect_gradient("channel bias db", b, db, [&] {
    Tensor y = copy_of(x);
    be->channel_bias_forward(b, y);
    return dot(y, r);
  });
}

}  // namespace
}  // namespace dp::test
