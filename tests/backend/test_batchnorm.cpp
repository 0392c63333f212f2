// Batch norm on the CPU backend: training forward (incl. PyTorch's running-stat update with the
// unbiased variance) and inference against a naive reference, and central-difference checks of
// dx, dgamma, dbeta with and without the fused ReLU.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "backend/backend.h"
#include "core/error.h"
#include "test_util.h"

namespace dp::test {
namespace {

struct NaiveBatchNorm {
  std::vector<double> mean, var;  // biased batch statistics
};

NaiveBatchNorm naive_stats(const BatchNormGeometry& g, const Tensor& x) {
  NaiveBatchNorm s{std::vector<double>(g.c), std::vector<double>(g.c)};
  const int64_t m = g.n * g.h * g.w;
  for (int64_t i = 0; i < m; ++i)
    for (int64_t c = 0; c < g.c; ++c) s.mean[c] += x.data()[i * g.c + c];
  for (auto& v : s.mean) v /= m;
  for (int64_t i = 0; i < m; ++i)
    for (int64_t c = 0; c < g.c; ++c) {
      double d = x.data()[i * g.c + c] - s.mean[c];
      s.var[c] += d * d;
    }
  for (auto& v : s.var) v /= m;
  return s;
}

Tensor naive_normalise(const BatchNormGeometry& g, const Tensor& x, const Tensor& gamma,
                       const Tensor& beta, const std::vector<double>& mean,
                       const std::vector<double>& var) {
  Tensor y = Tensor::empty(x.shape());
  for (int64_t i = 0; i < g.n * g.h * g.w; ++i)
    for (int64_t c = 0; c < g.c; ++c) {
      double v = (x.data()[i * g.c + c] - mean[c]) / std::sqrt(var[c] + g.eps) * gamma.data()[c] +
                 beta.data()[c];
      y.data()[i * g.c + c] = static_cast<float>(g.fuse_relu && v < 0 ? 0 : v);
    }
  return y;
}

Tensor from_vector(const std::vector<double>& v) {
  Tensor t = Tensor::empty({static_cast<int64_t>(v.size())});
  for (size_t i = 0; i < v.size(); ++i) t.data()[i] = static_cast<float>(v[i]);
  return t;
}

// On the plain CPU backend the fused batch norm + add + ReLU exists exactly where AVX-512F does
// (for these multiple-of-16 channel counts): a predicate that broke would otherwise turn the
// fused op's tests into skips. The staged and CUDA builds may not fuse; they only skip.
[[maybe_unused]] void expect_fused_where_avx512(const Backend& be, const BatchNormGeometry& g) {
#if !defined(DP_TEST_ON_CUDA) && !defined(DP_TEST_STAGED_CPU)
  EXPECT_EQ(be.fuses_batchnorm_add_relu(g), __builtin_cpu_supports("avx512f") != 0) << g.c;
#else
  (void)be;
  (void)g;
#endif
}

class CpuBatchNorm : public ::testing::TestWithParam<bool> {};

TEST_P(CpuBatchNorm, TrainingForwardAndRunningStatsMatchPyTorchSemantics) {
  auto be = make_backend_under_test();
  for (int64_t c : {5, 16, 64}) {  // 16: described to oneDNN as nChw16c
    BatchNormGeometry g{4, 3, 5, c};
    g.fuse_relu = GetParam();
    g.momentum = 0.1f;
    std::mt19937 gen(21);
    Tensor x = random_tensor({g.n, g.h, g.w, g.c}, gen, -2.f, 3.f);
    Tensor gamma = random_tensor({g.c}, gen, 0.5f, 1.5f), beta = random_tensor({g.c}, gen);
    Tensor rm = random_tensor({g.c}, gen), rv = random_tensor({g.c}, gen, 0.5f, 2.f);
    Tensor rm0 = copy_of(rm), rv0 = copy_of(rv);
    Tensor y, saved_mean, saved_var, ws;
    be->batchnorm_forward_train(g, x, gamma, beta, rm, rv, y, saved_mean, saved_var, ws);

    NaiveBatchNorm s = naive_stats(g, x);
    EXPECT_CLOSE(y, naive_normalise(g, x, gamma, beta, s.mean, s.var), 1e-5);
    const double m = g.n * g.h * g.w;
    std::vector<double> rm_ref(c), rv_ref(c);
    for (int64_t k = 0; k < c; ++k) {
      rm_ref[k] = 0.9 * rm0.data()[k] + 0.1 * s.mean[k];
      rv_ref[k] = 0.9 * rv0.data()[k] + 0.1 * s.var[k] * m / (m - 1);  // unbiased
    }
    EXPECT_CLOSE(rm, from_vector(rm_ref), 1e-5);
    EXPECT_CLOSE(rv, from_vector(rv_ref), 1e-5);
  }
}

TEST_P(CpuBatchNorm, InferenceUsesRunningStats) {
  auto be = make_backend_under_test();
  BatchNormGeometry g{3, 4, 4, 32};
  g.fuse_relu = GetParam();
  std::mt19937 gen(22);
  Tensor x = random_tensor({g.n, g.h, g.w, g.c}, gen, -2.f, 2.f);
  Tensor gamma = random_tensor({g.c}, gen, 0.5f, 1.5f), beta = random_tensor({g.c}, gen);
  Tensor rm = random_tensor({g.c}, gen), rv = random_tensor({g.c}, gen, 0.5f, 2.f);
  std::vector<double> mean(rm.data(), rm.data() + g.c), var(rv.data(), rv.data() + g.c);
  Tensor y;
  be->batchnorm_forward_inference(g, x, gamma, beta, rm, rv, y);
  EXPECT_CLOSE(y, naive_normalise(g, x, gamma, beta, mean, var), 1e-5);
}

TEST_P(CpuBatchNorm, FiniteDifferenceGradients) {
  auto be = make_backend_under_test();
  for (int64_t c : {5, 16, 32}) {
    BatchNormGeometry g{2, 3, 3, c};
    g.fuse_relu = GetParam();
    SCOPED_TRACE(fmt::format("c={} fuse_relu={}", c, g.fuse_relu));
    std::mt19937 gen(23);
    Tensor x = random_tensor({g.n, g.h, g.w, g.c}, gen, -2.f, 2.f);
    Tensor gamma = random_tensor({g.c}, gen, 0.5f, 1.5f), beta = random_tensor({g.c}, gen);
    Tensor rm = Tensor::zeros({g.c}), rv = Tensor::zeros({g.c});
    Tensor r = random_tensor(x.shape(), gen);
    Tensor y, saved_mean, saved_var, ws, dx, dgamma, dbeta;
    auto loss = [&] {
      be->batchnorm_forward_train(g, x, gamma, beta, rm, rv, y, saved_mean, saved_var, ws);
      return dot(y, r);
    };
    loss();
    be->batchnorm_backward(g, x, r, gamma, beta, saved_mean, saved_var, ws, dx, dgamma, dbeta);
    expect_gradient("bn dx", x, dx, loss, 1e-3f);
    expect_gradient("bn dgamma", gamma, dgamma, loss, 1e-3f);
    expect_gradient("bn dbeta", beta, dbeta, loss, 1e-3f);
  }
}

INSTANTIATE_TEST_SUITE_P(FuseRelu, CpuBatchNorm, ::testing::Bool());

// The fused ReLU's backward passes the gradient exactly where its forward kept a value (as
// torch's ReLU after batch norm: the gradient where the output is > 0), on outputs built to land
// within rounding of 0: each channel holds two values, and its shift is set (in double) so the
// lower one normalises to 0, so its sign is the rounding's. With the gradient 1 everywhere,
// dbeta counts the values backward passes; it must be each channel's count of y > 0. Both sides
// of 0 must occur, or the case tests nothing.
TEST(BatchNormRelu, BackwardPassesGradientExactlyWhereForwardKeptTheValue) {
  auto be = make_backend_under_test();
  BatchNormGeometry g{8, 8, 8, 64};
  g.fuse_relu = true;
  const int64_t rows = g.n * g.h * g.w;
  std::mt19937 gen(25);
  std::uniform_real_distribution<float> low(-2.f, 1.f), gap(0.25f, 2.f), scale(0.5f, 1.5f);
  Tensor x = Tensor::empty({g.n, g.h, g.w, g.c}), gamma = Tensor::empty({g.c});
  Tensor beta = Tensor::empty({g.c}), dy = Tensor::empty(x.shape());
  for (int64_t k = 0; k < g.c; ++k) {
    const float a = low(gen), b = a + gap(gen);
    for (int64_t r = 0; r < rows; ++r) x.data()[r * g.c + k] = r % 2 ? b : a;
    gamma.data()[k] = scale(gen);
    const double half = (double(b) - double(a)) / 2;  // a's distance below the mean
    beta.data()[k] = static_cast<float>(gamma.data()[k] * half / std::sqrt(half * half + g.eps));
  }
  std::fill_n(dy.data(), dy.numel(), 1.f);
  Tensor rm = Tensor::zeros({g.c}), rv = Tensor::zeros({g.c});
  Tensor y, saved_mean, saved_var, ws, dx, dgamma, dbeta;
  be->batchnorm_forward_train(g, x, gamma, beta, rm, rv, y, saved_mean, saved_var, ws);
  be->batchnorm_backward(g, x, dy, gamma, beta, saved_mean, saved_var, ws, dx, dgamma, dbeta);
  int kept_low = 0;
  for (int64_t k = 0; k < g.c; ++k) {
    int64_t positive = 0;
    for (int64_t r = 0; r < rows; ++r) positive += y.data()[r * g.c + k] > 0.f;
    EXPECT_EQ(dbeta.data()[k], static_cast<float>(positive)) << "channel " << k;
    kept_low += positive == rows;
  }
  EXPECT_GT(kept_low, 0) << "no lower value rounded above 0: the case misses the boundary";
  EXPECT_LT(kept_low, g.c) << "every lower value rounded above 0: the case misses the boundary";
}

// Not on the CUDA backend, which has no fused op: there every case would skip.
#ifndef DP_TEST_ON_CUDA
// relu(batch norm + residual), the end of a residual block, as the backend's fused op where it
// has one (the CPU backend, on AVX-512): the output, saved statistics and running statistics
// match the naive reference, and batchnorm_backward from them gives what it gives after the
// unfused forward. Shapes: 16 channels (one contiguous plane per image), 48 (three channel
// blocks per pixel), 64 on 297 pixels (NHWC runs of 256 pixels and a short one).
TEST(BatchNormAddRelu, MatchesNaiveAndFeedsBackward) {
  auto be = make_backend_under_test();
  for (const BatchNormGeometry& shape :
       {BatchNormGeometry{4, 6, 6, 16}, BatchNormGeometry{2, 5, 7, 48},
        BatchNormGeometry{3, 9, 11, 64}}) {
    BatchNormGeometry g = shape;
    SCOPED_TRACE(fmt::format("c={} {}x{}x{}", g.c, g.n, g.h, g.w));
    expect_fused_where_avx512(*be, g);
    if (!be->fuses_batchnorm_add_relu(g)) GTEST_SKIP() << be->name() << " does not fuse it here";
    std::mt19937 gen(24);
    Tensor x = random_tensor({g.n, g.h, g.w, g.c}, gen, -2.f, 3.f);
    Tensor residual = random_tensor(x.shape(), gen);
    Tensor gamma = random_tensor({g.c}, gen, 0.5f, 1.5f), beta = random_tensor({g.c}, gen);
    Tensor rm = random_tensor({g.c}, gen), rv = random_tensor({g.c}, gen, 0.5f, 2.f);
    Tensor rm_unfused = copy_of(rm), rv_unfused = copy_of(rv);
    Tensor y, saved_mean, saved_var, ws;
    be->batchnorm_add_relu_forward_train(g, x, gamma, beta, rm, rv, residual, y, saved_mean,
                                         saved_var, ws);

    NaiveBatchNorm s = naive_stats(g, x);
    Tensor y_ref = naive_normalise(g, x, gamma, beta, s.mean, s.var);
    for (int64_t i = 0; i < y_ref.numel(); ++i)
      y_ref.data()[i] = std::max(0.f, y_ref.data()[i] + residual.data()[i]);
    EXPECT_CLOSE(y, y_ref, 1e-5);
    EXPECT_CLOSE(saved_mean, from_vector(s.mean), 1e-5);
    EXPECT_CLOSE(saved_var, from_vector(s.var), 1e-5);

    Tensor bn_out, y_unfused, mean_unfused, var_unfused, ws_unfused;
    be->batchnorm_forward_train(g, x, gamma, beta, rm_unfused, rv_unfused, bn_out, mean_unfused,
                                var_unfused, ws_unfused);
    be->add_relu_forward(bn_out, residual, y_unfused);
    EXPECT_CLOSE(rm, rm_unfused, 1e-5);
    EXPECT_CLOSE(rv, rv_unfused, 1e-5);

    Tensor dy = random_tensor(x.shape(), gen), dx, dgamma, dbeta, dx_u, dgamma_u, dbeta_u;
    be->batchnorm_backward(g, x, dy, gamma, beta, saved_mean, saved_var, ws, dx, dgamma, dbeta);
    be->batchnorm_backward(g, x, dy, gamma, beta, mean_unfused, var_unfused, ws_unfused, dx_u,
                           dgamma_u, dbeta_u);
    EXPECT_CLOSE(dx, dx_u, 1e-4);
    EXPECT_CLOSE(dgamma, dgamma_u, 1e-5);
    EXPECT_CLOSE(dbeta, dbeta_u, 1e-5);
  }
}

#endif  // DP_TEST_ON_CUDA

// A NaN in one channel's input makes that channel's batch mean and variance NaN, and so its
// running mean and variance, as PyTorch's batch norm does; the other channels are untouched.
// Batch norm alone, and fused with add + ReLU where the backend has that op (which once clamped
// with std::max(0.0, v), turning a NaN variance into 0).
TEST(BatchNormAddRelu, NanInputPoisonsItsChannelsStatisticsAsPyTorch) {
  auto be = make_backend_under_test();
  const BatchNormGeometry g{2, 4, 4, 16};
  std::mt19937 gen(26);
  Tensor x = random_tensor({g.n, g.h, g.w, g.c}, gen, -2.f, 3.f);
  constexpr int64_t kPoisoned = 5;
  x.data()[3 * g.c + kPoisoned] = std::numeric_limits<float>::quiet_NaN();
  Tensor residual = random_tensor(x.shape(), gen);
  Tensor gamma = random_tensor({g.c}, gen, 0.5f, 1.5f), beta = random_tensor({g.c}, gen);
  for (bool fused : {true, false}) {
    if (fused && !be->fuses_batchnorm_add_relu(g)) continue;  // no fused op on this backend
    SCOPED_TRACE(fused ? "fused" : "batchnorm_forward_train");
    Tensor rm = Tensor::zeros({g.c}), rv = random_tensor({g.c}, gen, 0.5f, 2.f);
    Tensor y, saved_mean, saved_var, ws;
    if (fused)
      be->batchnorm_add_relu_forward_train(g, x, gamma, beta, rm, rv, residual, y, saved_mean,
                                           saved_var, ws);
    else
      be->batchnorm_forward_train(g, x, gamma, beta, rm, rv, y, saved_mean, saved_var, ws);
    for (int64_t c = 0; c < g.c; ++c) {
      SCOPED_TRACE(fmt::format("channel {}", c));
      const bool poisoned = c == kPoisoned;
      EXPECT_EQ(std::isnan(saved_mean.data()[c]), poisoned);
      EXPECT_EQ(std::isnan(saved_var.data()[c]), poisoned);
      EXPECT_EQ(std::isnan(rm.data()[c]), poisoned);
      EXPECT_EQ(std::isnan(rv.data()[c]), poisoned);
    }
  }
}
// Blocked tensors are the CPU backend's own: the staging harness copies plain NHWC bytes.
#if !defined(DP_TEST_ON_CUDA) && !defined(DP_TEST_STAGED_CPU)

// The same on nChw16c activations (a blocked ResNet stage), with the residual blocked too and,
// at a stage's edge, still NHWC (reordered first); and statistics that would lose their digits
// about zero: a mean of 100 and a spread of 0.03, where E[x^2] - E[x]^2 cancels in float.
TEST(BatchNormAddRelu, BlockedLayoutsAndLargeMeans) {
  auto be = make_backend_under_test();
  BatchNormGeometry g{4, 8, 8, 32};
  expect_fused_where_avx512(*be, g);
  if (!be->fuses_batchnorm_add_relu(g)) GTEST_SKIP() << be->name() << " does not fuse it";
  std::mt19937 gen(25);
  Tensor x = random_tensor({g.n, g.h, g.w, g.c}, gen, -0.03f, 0.03f);
  for (int64_t i = 0; i < x.numel(); ++i) x.data()[i] += 100.f;
  Tensor residual = random_tensor(x.shape(), gen, -100.f, -99.f);
  Tensor gamma = random_tensor({g.c}, gen, 0.5f, 1.5f), beta = random_tensor({g.c}, gen);
  NaiveBatchNorm s = naive_stats(g, x);
  Tensor y_ref = naive_normalise(g, x, gamma, beta, s.mean, s.var);
  for (int64_t i = 0; i < y_ref.numel(); ++i)
    y_ref.data()[i] = std::max(0.f, y_ref.data()[i] + residual.data()[i] + 100.f);
  for (int64_t i = 0; i < residual.numel(); ++i) residual.data()[i] += 100.f;

  for (bool blocked_residual : {true, false}) {
    SCOPED_TRACE(blocked_residual ? "blocked residual" : "NHWC residual");
    Tensor rm = Tensor::zeros({g.c}), rv = Tensor::zeros({g.c});
    Tensor y, saved_mean, saved_var, ws;
    be->batchnorm_add_relu_forward_train(g, in_blocked_order(x), gamma, beta, rm, rv,
                                         blocked_residual ? in_blocked_order(residual) : residual,
                                         y, saved_mean, saved_var, ws);
    EXPECT_EQ(y.layout(), Layout::nchw16c);
    EXPECT_CLOSE(y, y_ref, 1e-4);
    EXPECT_CLOSE(saved_mean, from_vector(s.mean), 1e-6);
    EXPECT_CLOSE(saved_var, from_vector(s.var), 1e-4);
  }
}

#endif

// Every batch-norm op refuses an input that does not match the geometry and a per-channel
// tensor of the wrong length (both backends share check_batchnorm_operands).
TEST(BatchNormOperands, ShapeMismatchThrows) {
  auto be = make_backend_under_test();
  const BatchNormGeometry g{2, 4, 4, 8};
  Tensor x = Tensor::zeros({2, 4, 4, 8}), other_x = Tensor::zeros({2, 4, 4, 7});
  Tensor gamma = Tensor::zeros({8}), beta = Tensor::zeros({8}), short_vector = Tensor::zeros({7});
  Tensor running_mean = Tensor::zeros({8}), running_var = Tensor::zeros({8});
  Tensor y, saved_mean, saved_var, ws;
  EXPECT_THROW(be->batchnorm_forward_train(g, other_x, gamma, beta, running_mean, running_var, y,
                                           saved_mean, saved_var, ws),
               dp::Error);
  EXPECT_THROW(be->batchnorm_forward_train(g, x, short_vector, beta, running_mean, running_var, y,
                                           saved_mean, saved_var, ws),
               dp::Error);
  EXPECT_THROW(be->batchnorm_forward_inference(g, x, gamma, beta, running_mean, short_vector, y),
               dp::Error);
  Tensor dx, dgamma, dbeta;
  EXPECT_THROW(be->batchnorm_backward(g, x, x, gamma, beta, short_vector, running_var, ws, dx,
                                      dgamma, dbeta),
               dp::Error);
}

}  // namespace
}  // namespace dp::test
