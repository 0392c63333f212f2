// Max pooling, global average pooling and linear on the CPU backend: forward against naive
// references, max-pool backward against a naive argmax scatter, central-difference checks.
#include <gtest/gtest.h>

#include <limits>

#include "backend/backend.h"
#include "test_util.h"

namespace dp::test {
namespace {

// Distinct values 0.01 apart in random order, so a perturbation of 1e-3 never changes a max.
Tensor distinct_values(const Shape& shape, std::mt19937& gen) {
  Tensor t = Tensor::empty(shape);
  std::vector<int64_t> order(t.numel());
  for (int64_t i = 0; i < t.numel(); ++i) order[i] = i;
  std::shuffle(order.begin(), order.end(), gen);
  for (int64_t i = 0; i < t.numel(); ++i)
    t.data()[i] = 0.01f * static_cast<float>(order[i] - t.numel() / 2);
  return t;
}

// Naive max pool: returns y and, per output element, the input index that won.
Tensor naive_maxpool(const PoolGeometry& g, const Tensor& x, std::vector<int64_t>& argmax) {
  Tensor y = Tensor::empty({g.n, g.out_h(), g.out_w(), g.c});
  argmax.assign(y.numel(), -1);
  for (int64_t n = 0; n < g.n; ++n)
    for (int64_t oh = 0; oh < g.out_h(); ++oh)
      for (int64_t ow = 0; ow < g.out_w(); ++ow)
        for (int64_t c = 0; c < g.c; ++c) {
          float best = -std::numeric_limits<float>::infinity();
          int64_t best_i = -1;
          for (int64_t kh = 0; kh < g.kernel; ++kh)
            for (int64_t kw = 0; kw < g.kernel; ++kw) {
              int64_t ih = oh * g.stride - g.pad + kh, iw = ow * g.stride - g.pad + kw;
              if (ih < 0 || ih >= g.h || iw < 0 || iw >= g.w) continue;
              int64_t i = ((n * g.h + ih) * g.w + iw) * g.c + c;
              if (x.data()[i] > best) best = x.data()[i], best_i = i;
            }
          int64_t o = ((n * g.out_h() + oh) * g.out_w() + ow) * g.c + c;
          y.data()[o] = best;
          argmax[o] = best_i;
        }
  return y;
}

TEST(CpuMaxPool, ForwardAndBackwardMatchNaive) {
  auto be = make_backend_under_test();
  const PoolGeometry shapes[] = {
      {2, 8, 8, 64, 3, 2, 1},  // the ResNet stem pool
      {2, 7, 7, 16, 3, 2, 1},  // odd size
      {2, 6, 6, 5, 2, 2, 0},
      {2, 31, 31, 8, 2, 2, 0},  // kernel = stride, floor: 31 -> 15 (the last row is dropped)
      {2, 7, 7, 16, 3, 3, 0},   // 7 -> 2
      {2, 3, 3, 16, 3, 3, 0},   // the whole map -> 1x1
  };
  for (const auto& g : shapes) {
    SCOPED_TRACE(fmt::format("{}x{}x{} k{} s{} p{}", g.h, g.w, g.c, g.kernel, g.stride, g.pad));
    std::mt19937 gen(31);
    Tensor x = distinct_values({g.n, g.h, g.w, g.c}, gen);
    std::vector<int64_t> argmax;
    Tensor y_ref = naive_maxpool(g, x, argmax);
    Tensor y, ws, dx;
    be->maxpool_forward(g, x, y, ws);
    EXPECT_CLOSE(y, y_ref, 1e-7);

    Tensor dy = random_tensor(y.shape(), gen);
    Tensor dx_ref = Tensor::zeros(x.shape());
    for (int64_t o = 0; o < dy.numel(); ++o) dx_ref.data()[argmax[o]] += dy.data()[o];
    be->maxpool_backward(g, dy, ws, dx);
    EXPECT_CLOSE(dx, dx_ref, 1e-6);
  }
}

TEST(CpuMaxPool, FiniteDifferenceGradient) {
  auto be = make_backend_under_test();
  PoolGeometry g{2, 7, 7, 3, 3, 2, 1};
  std::mt19937 gen(32);
  Tensor x = distinct_values({g.n, g.h, g.w, g.c}, gen);
  Tensor r = random_tensor({g.n, g.out_h(), g.out_w(), g.c}, gen);
  Tensor y, ws, dx;
  auto loss = [&] {
    be->maxpool_forward(g, x, y, ws);
    return dot(y, r);
  };
  loss();
  be->maxpool_backward(g, r, ws, dx);
  expect_gradient("maxpool dx", x, dx, loss, 1e-3f, 1e-2, 400);
}

TEST(CpuGlobalAvgPool, ForwardMatchesNaiveAndGradientChecks) {
  auto be = make_backend_under_test();
  std::mt19937 gen(33);
  Tensor x = random_tensor({3, 4, 5, 7}, gen);
  Tensor y;
  be->global_avgpool_forward(x, y);
  ASSERT_EQ(y.shape(), (Shape{3, 7}));
  Tensor y_ref = Tensor::zeros({3, 7});
  for (int64_t n = 0; n < 3; ++n)
    for (int64_t p = 0; p < 20; ++p)
      for (int64_t c = 0; c < 7; ++c)
        y_ref.data()[n * 7 + c] += x.data()[(n * 20 + p) * 7 + c] / 20.f;
  EXPECT_CLOSE(y, y_ref, 1e-6);

  Tensor r = random_tensor({3, 7}, gen);
  Tensor dx = Tensor::empty(x.shape());
  be->global_avgpool_backward(r, dx);
  expect_gradient("avgpool dx", x, dx, [&] {
    be->global_avgpool_forward(x, y);
    return dot(y, r);
  });
}

// Every backend refuses pooling operands that do not match the geometry, a window padded by
// more than half its size, and global pooling's non-NHWC operands (both share the checks).
TEST(PoolOperands, ShapeMismatchThrows) {
  auto be = make_backend_under_test();
  const PoolGeometry g{2, 8, 8, 4, 2, 2, 0};
  Tensor x = Tensor::zeros({2, 8, 8, 4}), y, ws, dx;
  expect_error_mentioning([&] { be->maxpool_forward(g, Tensor::zeros({2, 8, 8, 5}), y, ws); },
                          "maxpool_forward: operand (2, 8, 8, 5)");
  be->maxpool_forward(g, x, y, ws);
  expect_error_mentioning([&] { be->maxpool_backward(g, Tensor::zeros({2, 8, 8, 4}), ws, dx); },
                          "maxpool_backward: operand (2, 8, 8, 4)");
  const PoolGeometry overpadded{2, 8, 8, 4, 2, 2, 2};
  expect_error_mentioning([&] { be->maxpool_forward(overpadded, x, y, ws); },
                          "bad pooling geometry");
  const PoolGeometry no_stride{2, 8, 8, 4, 2, 0, 0};  // refused before out_h() divides by it
  expect_error_mentioning([&] { be->maxpool_backward(no_stride, y, ws, dx); },
                          "bad pooling geometry");
  Tensor pooled;
  expect_error_mentioning([&] { be->global_avgpool_forward(Tensor::zeros({2, 4}), pooled); },
                          "expects NHWC");
  Tensor wrong_dx = Tensor::empty({2, 8, 8, 5});
  expect_error_mentioning([&] { be->global_avgpool_backward(Tensor::zeros({2, 4}), wrong_dx); },
                          "must be allocated NHWC");
}

// y = x w^T (+ b), x {n, in}, w {out, in}, accumulated in double.
Tensor naive_linear(const Tensor& x, const Tensor& w, const Tensor* b) {
  const int64_t n = x.shape()[0], in = x.shape()[1], out = w.shape()[0];
  Tensor y = Tensor::empty({n, out});
  for (int64_t i = 0; i < n; ++i)
    for (int64_t o = 0; o < out; ++o) {
      double s = b ? b->data()[o] : 0.0;
      for (int64_t k = 0; k < in; ++k)
        s += static_cast<double>(x.data()[i * in + k]) * w.data()[o * in + k];
      y.data()[i * out + o] = static_cast<float>(s);
    }
  return y;
}

TEST(CpuLinear, ForwardMatchesNaiveAndGradientChecks) {
  auto be = make_backend_under_test();
  for (auto [n, in, out] : {std::tuple<int64_t, int64_t, int64_t>{4, 7, 3}, {8, 64, 10}}) {
    SCOPED_TRACE(fmt::format("{}x{} -> {}", n, in, out));
    std::mt19937 gen(34);
    Tensor x = random_tensor({n, in}, gen), w = random_tensor({out, in}, gen),
           b = random_tensor({out}, gen);
    Tensor y;
    be->linear_forward(x, w, b, y);
    EXPECT_CLOSE(y, naive_linear(x, w, &b), 1e-5);

    Tensor r = random_tensor({n, out}, gen);
    Tensor dx, dw, db;
    be->linear_backward(x, w, r, dx, dw, db);
    auto loss = [&] {
      be->linear_forward(x, w, b, y);
      return dot(y, r);
    };
    expect_gradient("linear dx", x, dx, loss);
    expect_gradient("linear dw", w, dw, loss);
    expect_gradient("linear db", b, db, loss);
  }
}

// An undefined bias: y = x w^T exactly; backward as with a bias (db is then unused).
TEST(CpuLinear, WithoutBias) {
  auto be = make_backend_under_test();
  std::mt19937 gen(35);
  const int64_t n = 8, in = 256, out = 10;
  Tensor x = random_tensor({n, in}, gen), w = random_tensor({out, in}, gen), none;
  Tensor y;
  be->linear_forward(x, w, none, y);
  EXPECT_CLOSE(y, naive_linear(x, w, nullptr), 1e-5);
  Tensor r = random_tensor({n, out}, gen);
  Tensor dx, dw, db;
  be->linear_backward(x, w, r, dx, dw, db);
  auto loss = [&] {
    be->linear_forward(x, w, none, y);
    return dot(y, r);
  };
  expect_gradient("linear dx", x, dx, loss);
  expect_gradient("linear dw", w, dw, loss);
}

}  // namespace
}  // namespace dp::test
