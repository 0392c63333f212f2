// The option-A shortcut op (Backend::subsample_pad_*), on whichever backend this file is built
// for: forward bit for bit against index arithmetic (odd map sizes, stride 1 and 2, the OpenMP
// path), backward as the exact adjoint of forward (<forward(x), r> = <x, backward(r)>, and
// every element against the reference), and bad operands refused.
#include <gtest/gtest.h>

#include <ostream>

#include "backend/backend.h"
#include "core/error.h"
#include "test_util.h"

namespace dp {
// gtest prints a parameter with this (found by argument-dependent lookup in dp).
void PrintTo(const SubsamplePadGeometry& g, std::ostream* os) {
  *os << fmt::format("n{} {}x{} c{}->{} s{}", g.n, g.h, g.w, g.c_in, g.c_out, g.stride);
}
}  // namespace dp

namespace dp::test {
namespace {

// y[b, i, j, k] = x[b, i*s, j*s, k] for k < c_in, else 0 (NHWC host tensors).
Tensor reference_forward(const SubsamplePadGeometry& g, const Tensor& x) {
  Tensor y = Tensor::zeros({g.n, g.out_h(), g.out_w(), g.c_out});
  for (int64_t b = 0; b < g.n; ++b)
    for (int64_t i = 0; i < g.out_h(); ++i)
      for (int64_t j = 0; j < g.out_w(); ++j)
        for (int64_t k = 0; k < g.c_in; ++k)
          y.data()[((b * g.out_h() + i) * g.out_w() + j) * g.c_out + k] =
              x.data()[((b * g.h + i * g.stride) * g.w + j * g.stride) * g.c_in + k];
  return y;
}

// The transpose of reference_forward: a scatter into zeros.
Tensor reference_backward(const SubsamplePadGeometry& g, const Tensor& dy) {
  Tensor dx = Tensor::zeros({g.n, g.h, g.w, g.c_in});
  for (int64_t b = 0; b < g.n; ++b)
    for (int64_t i = 0; i < g.out_h(); ++i)
      for (int64_t j = 0; j < g.out_w(); ++j)
        for (int64_t k = 0; k < g.c_in; ++k)
          dx.data()[((b * g.h + i * g.stride) * g.w + j * g.stride) * g.c_in + k] =
              dy.data()[((b * g.out_h() + i) * g.out_w() + j) * g.c_out + k];
  return dx;
}

void expect_equal(const char* what, const Tensor& actual, const Tensor& ref) {
  ASSERT_EQ(actual.shape(), ref.shape()) << what;
  const Tensor a = in_nhwc_order(actual);
  for (int64_t i = 0; i < ref.numel(); ++i)
    ASSERT_EQ(a.data()[i], ref.data()[i]) << what << " element " << i;
}

class SubsamplePad : public ::testing::TestWithParam<SubsamplePadGeometry> {};

TEST_P(SubsamplePad, ForwardAndBackwardAgainstIndexArithmetic) {
  const SubsamplePadGeometry g = GetParam();
  auto be = make_backend_under_test();
  std::mt19937 gen(static_cast<uint32_t>(g.h * 131 + g.c_out));
  Tensor x = random_tensor({g.n, g.h, g.w, g.c_in}, gen);
  Tensor r = random_tensor({g.n, g.out_h(), g.out_w(), g.c_out}, gen);
  Tensor y, dx = Tensor::empty({g.n, g.h, g.w, g.c_in});
  be->fill(dx, 7.f);  // backward must overwrite every element
  be->subsample_pad_forward(g, x, y);
  be->subsample_pad_backward(g, r, dx);
  expect_equal("y", y, reference_forward(g, x));
  expect_equal("dx", dx, reference_backward(g, r));
  // The adjoint identity, in double: exact up to summation order.
  EXPECT_NEAR(dot(y, r), dot(x, dx), 1e-9 * (1 + std::abs(dot(y, r))));
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, SubsamplePad,
    ::testing::Values(SubsamplePadGeometry{2, 7, 5, 3, 6, 2},    // odd maps: ceil(h/2)
                      SubsamplePadGeometry{2, 8, 8, 16, 32, 2},  // resnet20's stage 2 entry
                      SubsamplePadGeometry{3, 6, 6, 4, 4, 1},    // stride 1, nothing padded
                      SubsamplePadGeometry{2, 9, 9, 5, 8, 3},
                      SubsamplePadGeometry{16, 16, 16, 32, 64, 2}),  // the OpenMP path
    [](const auto& info) {
      const SubsamplePadGeometry& g = info.param;
      return fmt::format("n{}_{}x{}_c{}to{}_s{}", g.n, g.h, g.w, g.c_in, g.c_out, g.stride);
    });

TEST(SubsamplePadOperands, RefusesMismatchedShapesAndGeometry) {
  auto be = make_backend_under_test();
  Tensor x = Tensor::zeros({2, 8, 8, 16}), y, dx;
  EXPECT_THROW(be->subsample_pad_forward({2, 8, 8, 32, 64, 2}, x, y), Error);  // c_in differs
  EXPECT_THROW(be->subsample_pad_forward({2, 8, 8, 16, 8, 2}, x, y), Error);   // c_out < c_in
  EXPECT_THROW(be->subsample_pad_forward({2, 8, 8, 16, 32, 0}, x, y), Error);  // stride 0
  Tensor dy = Tensor::zeros({2, 4, 4, 16});
  EXPECT_THROW(be->subsample_pad_backward({2, 8, 8, 16, 32, 2}, dy, dx), Error);  // c_out
  // refused before the output gradient's expected shape divides by the stride
  EXPECT_THROW(be->subsample_pad_backward({2, 8, 8, 16, 32, 0}, dy, dx), Error);  // stride 0
}

}  // namespace
}  // namespace dp::test
