// Elementwise ops and memory helpers of the CPU backend: ReLU, add+ReLU, accumulate, fill,
// copies and sum of squares, with central-difference checks for the ReLU gradients.
#include <gtest/gtest.h>

#include "backend/backend.h"
#include "test_util.h"

namespace dp::test {
namespace {

TEST(CpuElementwise, ReluForwardAndGradient) {
  auto be = make_backend_under_test();
  std::mt19937 gen(41);
  // Large enough to take the OpenMP path as well.
  for (int64_t n : {97, 70001}) {
    Tensor x = random_away_from_zero({n}, gen, 0.05f), r = random_tensor({n}, gen);
    Tensor y, dx;
    be->relu_forward(x, y);
    for (int64_t i = 0; i < n; ++i) ASSERT_EQ(y.data()[i], x.data()[i] > 0 ? x.data()[i] : 0.f);
    be->relu_backward(y, r, dx);
    expect_gradient("relu dx", x, dx, [&] {
      be->relu_forward(x, y);
      return dot(y, r);
    });
  }
}

TEST(CpuElementwise, AddReluForwardAndGradient) {
  auto be = make_backend_under_test();
  std::mt19937 gen(42);
  const Shape shape{2, 3, 3, 8};
  Tensor sum = random_away_from_zero(shape, gen, 0.05f), b = random_tensor(shape, gen);
  Tensor a = Tensor::empty(shape);
  for (int64_t i = 0; i < a.numel(); ++i) a.data()[i] = sum.data()[i] - b.data()[i];
  Tensor r = random_tensor(shape, gen), y, grad;
  be->add_relu_forward(a, b, y);
  for (int64_t i = 0; i < y.numel(); ++i) {
    float s = a.data()[i] + b.data()[i];
    ASSERT_EQ(y.data()[i], s > 0 ? s : 0.f);
  }
  be->add_relu_backward(y, r, grad);
  auto loss = [&] {
    be->add_relu_forward(a, b, y);
    return dot(y, r);
  };
  expect_gradient("add_relu da", a, grad, loss);
  expect_gradient("add_relu db", b, grad, loss);
}

// The residual block's fused gradient sum: (y + x) where the ReLU output is positive, else 0,
// bit for bit what accumulate followed by the ReLU mask gives.
TEST(CpuElementwise, AccumulateReluBackwardSumsThenMasks) {
  auto be = make_backend_under_test();
  std::mt19937 gen(44);
  for (int64_t n : {97, 70001}) {
    Tensor x = random_tensor({n}, gen), y = random_tensor({n}, gen);
    Tensor relu_out = random_tensor({n}, gen);
    for (int64_t i = 0; i < n; ++i) relu_out.data()[i] = std::max(0.f, relu_out.data()[i]);
    Tensor y0 = copy_of(y);
    be->accumulate_relu_backward(x, relu_out, y);
    int64_t kept = 0;
    for (int64_t i = 0; i < n; ++i) {
      const float sum = y0.data()[i] + x.data()[i];
      ASSERT_EQ(y.data()[i], relu_out.data()[i] > 0 ? sum : 0.f) << i;
      kept += relu_out.data()[i] > 0;
    }
    EXPECT_GT(kept, 0);
    EXPECT_LT(kept, n);
  }
}

TEST(CpuElementwise, AccumulateFillCopySumOfSquares) {
  auto be = make_backend_under_test();
  std::mt19937 gen(43);
  Tensor x = random_tensor({50000}, gen), y = random_tensor({50000}, gen);
  Tensor y0 = copy_of(y);
  be->accumulate(x, y);
  for (int64_t i = 0; i < x.numel(); ++i) ASSERT_EQ(y.data()[i], y0.data()[i] + x.data()[i]);

  double ref = 0;
  for (int64_t i = 0; i < x.numel(); ++i) ref += static_cast<double>(x.data()[i]) * x.data()[i];
  EXPECT_NEAR(be->sum_of_squares(x), ref, 1e-9 * ref);

  Tensor t = be->allocate({3, 5});
  be->fill(t, 2.5f);
  for (int64_t i = 0; i < 15; ++i) ASSERT_EQ(t.data()[i], 2.5f);
  std::vector<float> host(15, 0.f);
  for (int i = 0; i < 15; ++i) host[i] = static_cast<float>(i);
  be->copy_from_host(host.data(), t);
  std::vector<float> back(15, -1.f);
  be->copy_to_host(t, back.data());
  EXPECT_EQ(back, host);
}

}  // namespace
}  // namespace dp::test
