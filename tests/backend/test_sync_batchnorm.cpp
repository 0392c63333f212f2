// The batch norm pieces SyncBatchNorm runs (backend.h: local moments, normalize, backward sums,
// backward input), with the ranks played by slices of one batch in one process: a batch cut
// into unequal parts, each part's moments combined as nn/sync_batchnorm.cpp combines the
// ranks', and each part normalised and differentiated with the combined numbers, must give
// the backend's own batch norm over the whole batch: output, running statistics, dx, and
// dgamma / dbeta as the sum of the parts'. Also central differences through the pieces, and
// (CPU) nChw16c activations.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "backend/backend.h"
#include "test_util.h"

namespace dp::test {
namespace {

// Samples [n0, n1) of an NHWC host tensor.
Tensor samples(const Tensor& x, int64_t n0, int64_t n1) {
  const int64_t per = x.numel() / x.dim(0);
  Tensor out = Tensor::empty({n1 - n0, x.dim(1), x.dim(2), x.dim(3)});
  std::copy_n(x.data() + n0 * per, (n1 - n0) * per, out.data());
  return out;
}

// Parts in sample order, back into one NHWC tensor of `shape`.
Tensor concatenated(const std::vector<Tensor>& parts, const Shape& shape) {
  Tensor out = Tensor::empty(shape);
  int64_t at = 0;
  for (const Tensor& p : parts) {
    const Tensor nhwc = in_nhwc_order(p);
    std::copy_n(nhwc.data(), nhwc.numel(), out.data() + at);
    at += nhwc.numel();
  }
  return out;
}

Tensor host_vector(const std::vector<double>& v) {
  Tensor t = Tensor::empty({static_cast<int64_t>(v.size())});
  for (size_t i = 0; i < v.size(); ++i) t.data()[i] = static_cast<float>(v[i]);
  return t;
}

// What the sync layer computes from the parts' moments: the global mean and invstd (the
// combination of nn::combine_moments, written out again here) and the unbiased variance.
struct Combined {
  Tensor mean, invstd;
  std::vector<double> mean_d, unbiased_var;
  double count = 0;
};

Combined combine(Backend& be, const BatchNormGeometry& g, const std::vector<Tensor>& parts) {
  std::vector<double> n, sum(g.c, 0.0);
  std::vector<Tensor> means, m2s;
  Combined out;
  for (const Tensor& p : parts) {
    BatchNormGeometry gp = g;
    gp.n = p.dim(0);
    Tensor mean, m2;
    be.batchnorm_local_moments(gp, p, mean, m2);
    n.push_back(double(gp.n * gp.h * gp.w));
    out.count += n.back();
    means.push_back(mean);
    m2s.push_back(m2);
  }
  out.mean_d.assign(g.c, 0.0);
  for (size_t r = 0; r < parts.size(); ++r)
    for (int64_t k = 0; k < g.c; ++k) out.mean_d[k] += n[r] * means[r].data()[k] / out.count;
  std::vector<double> m2(g.c, 0.0), invstd(g.c);
  for (size_t r = 0; r < parts.size(); ++r)
    for (int64_t k = 0; k < g.c; ++k) {
      const double d = means[r].data()[k] - out.mean_d[k];
      m2[k] += m2s[r].data()[k] + n[r] * d * d;
    }
  out.unbiased_var.resize(g.c);
  for (int64_t k = 0; k < g.c; ++k) {
    invstd[k] = 1.0 / std::sqrt(m2[k] / out.count + g.eps);
    out.unbiased_var[k] = m2[k] / (out.count - 1);
  }
  out.mean = host_vector(out.mean_d);
  out.invstd = host_vector(invstd);
  return out;
}

struct PartsResult {
  Tensor y, dx, dgamma, dbeta;
  Combined stats;
};

// The pieces over `parts` (as ranks), dy cut the same way.
PartsResult run_parts(Backend& be, const BatchNormGeometry& g, const std::vector<Tensor>& parts,
                      const std::vector<Tensor>& dys, const Tensor& gamma, const Tensor& beta) {
  PartsResult out;
  out.stats = combine(be, g, parts);
  std::vector<Tensor> ys, dxs;
  std::vector<double> sum_dy(g.c, 0.0), sum_dy_xhat(g.c, 0.0);
  std::vector<Tensor> local_dgamma, local_dbeta;
  for (size_t r = 0; r < parts.size(); ++r) {
    BatchNormGeometry gp = g;
    gp.n = parts[r].dim(0);
    Tensor y, s_dy, s_dyx;
    be.batchnorm_normalize(gp, parts[r], gamma, beta, out.stats.mean, out.stats.invstd, y);
    ys.push_back(y);
    be.batchnorm_backward_sums(gp, parts[r], dys[r], gamma, beta, out.stats.mean,
                               out.stats.invstd, s_dy, s_dyx);
    for (int64_t k = 0; k < g.c; ++k) {
      sum_dy[k] += s_dy.data()[k];
      sum_dy_xhat[k] += s_dyx.data()[k];
    }
  }
  out.dgamma = host_vector(sum_dy_xhat);
  out.dbeta = host_vector(sum_dy);
  for (int64_t k = 0; k < g.c; ++k) {
    sum_dy[k] /= out.stats.count;
    sum_dy_xhat[k] /= out.stats.count;
  }
  const Tensor mean_dy = host_vector(sum_dy), mean_dy_xhat = host_vector(sum_dy_xhat);
  for (size_t r = 0; r < parts.size(); ++r) {
    BatchNormGeometry gp = g;
    gp.n = parts[r].dim(0);
    Tensor dx;
    be.batchnorm_backward_input(gp, parts[r], dys[r], gamma, beta, out.stats.mean,
                                out.stats.invstd, mean_dy, mean_dy_xhat, dx);
    dxs.push_back(dx);
  }
  const Shape whole{g.n, g.h, g.w, g.c};
  out.y = concatenated(ys, whole);
  out.dx = concatenated(dxs, whole);
  return out;
}

class SyncBatchNormPieces : public ::testing::TestWithParam<bool> {};

// Parts of 1, 3 and 2 samples (unequal counts weigh differently in the combination).
TEST_P(SyncBatchNormPieces, SplitBatchEqualsTheWholeBatch) {
  auto be = make_backend_under_test();
  for (int64_t c : {5, 16, 48}) {
    BatchNormGeometry g{6, 3, 5, c};
    g.fuse_relu = GetParam();
    SCOPED_TRACE(fmt::format("c={} fuse_relu={}", c, g.fuse_relu));
    std::mt19937 gen(31);
    // A mean far from zero against the spread: the combination must not cancel.
    Tensor x = random_tensor({g.n, g.h, g.w, g.c}, gen, 7.f, 9.f);
    Tensor gamma = random_tensor({g.c}, gen, 0.5f, 1.5f), beta = random_tensor({g.c}, gen);
    Tensor dy = random_tensor(x.shape(), gen);
    Tensor rm = random_tensor({g.c}, gen), rv = random_tensor({g.c}, gen, 0.5f, 2.f);
    const Tensor rm0 = copy_of(rm), rv0 = copy_of(rv);
    Tensor y, saved_mean, saved_var, ws, dx, dgamma, dbeta;
    be->batchnorm_forward_train(g, x, gamma, beta, rm, rv, y, saved_mean, saved_var, ws);
    be->batchnorm_backward(g, x, dy, gamma, beta, saved_mean, saved_var, ws, dx, dgamma, dbeta);

    const std::vector<int64_t> cuts{0, 1, 4, 6};
    std::vector<Tensor> parts, dys;
    for (size_t r = 0; r + 1 < cuts.size(); ++r) {
      parts.push_back(samples(x, cuts[r], cuts[r + 1]));
      dys.push_back(samples(dy, cuts[r], cuts[r + 1]));
    }
    const PartsResult p = run_parts(*be, g, parts, dys, gamma, beta);
    EXPECT_CLOSE(p.stats.mean, saved_mean, 1e-6);
    EXPECT_CLOSE(p.y, y, 1e-5);
    EXPECT_CLOSE(p.dx, dx, 1e-4);
    EXPECT_CLOSE(p.dgamma, dgamma, 1e-5);
    EXPECT_CLOSE(p.dbeta, dbeta, 1e-5);
    // The running statistics the sync layer writes, from the combined numbers, against the
    // backend's update from the whole batch.
    std::vector<double> rm_sync(c), rv_sync(c);
    for (int64_t k = 0; k < c; ++k) {
      rm_sync[k] = 0.9 * rm0.data()[k] + 0.1 * p.stats.mean_d[k];
      rv_sync[k] = 0.9 * rv0.data()[k] + 0.1 * p.stats.unbiased_var[k];
    }
    EXPECT_CLOSE(host_vector(rm_sync), rm, 1e-5);
    EXPECT_CLOSE(host_vector(rv_sync), rv, 1e-5);
  }
}

// Central differences of L = sum(y * r) through the pieces on one part (the statistics depend
// on x, so this checks backward_sums and backward_input together, ReLU mask included).
TEST_P(SyncBatchNormPieces, FiniteDifferenceGradients) {
  auto be = make_backend_under_test();
  for (int64_t c : {5, 16}) {
    BatchNormGeometry g{2, 3, 3, c};
    g.fuse_relu = GetParam();
    SCOPED_TRACE(fmt::format("c={} fuse_relu={}", c, g.fuse_relu));
    std::mt19937 gen(33);
    Tensor x = random_tensor({g.n, g.h, g.w, g.c}, gen, -2.f, 2.f);
    Tensor gamma = random_tensor({g.c}, gen, 0.5f, 1.5f), beta = random_tensor({g.c}, gen);
    Tensor r = random_tensor(x.shape(), gen);
    auto loss = [&] {
      const PartsResult p = run_parts(*be, g, {x}, {r}, gamma, beta);
      return dot(p.y, r);
    };
    const PartsResult p = run_parts(*be, g, {x}, {r}, gamma, beta);
    expect_gradient("sync bn dx", x, p.dx, loss, 1e-3f);
    expect_gradient("sync bn dgamma", gamma, p.dgamma, loss, 1e-3f);
    expect_gradient("sync bn dbeta", beta, p.dbeta, loss, 1e-3f);
  }
}

INSTANTIATE_TEST_SUITE_P(FuseRelu, SyncBatchNormPieces, ::testing::Bool());

// Blocked tensors are the CPU backend's own: the staging harness copies plain NHWC bytes.
#if !defined(DP_TEST_ON_CUDA) && !defined(DP_TEST_STAGED_CPU)
// The pieces on nChw16c activations (a blocked ResNet stage) give what they give on NHWC, in
// the input's layout, with dy in either layout.
TEST(SyncBatchNormPiecesBlocked, EqualNhwc) {
  auto be = make_backend_under_test();
  BatchNormGeometry g{2, 8, 8, 32};
  g.fuse_relu = true;
  std::mt19937 gen(35);
  Tensor x = random_tensor({g.n, g.h, g.w, g.c}, gen, -2.f, 3.f);
  Tensor gamma = random_tensor({g.c}, gen, 0.5f, 1.5f), beta = random_tensor({g.c}, gen);
  Tensor dy = random_tensor(x.shape(), gen);
  const PartsResult plain = run_parts(*be, g, {x}, {dy}, gamma, beta);
  for (bool blocked_dy : {true, false}) {
    SCOPED_TRACE(blocked_dy ? "blocked dy" : "NHWC dy");
    const Tensor xb = in_blocked_order(x);
    const PartsResult blocked =
        run_parts(*be, g, {xb}, {blocked_dy ? in_blocked_order(dy) : dy}, gamma, beta);
    EXPECT_CLOSE(blocked.stats.mean, plain.stats.mean, 1e-6);
    EXPECT_CLOSE(blocked.y, plain.y, 1e-6);
    EXPECT_CLOSE(blocked.dx, plain.dx, 1e-5);
    EXPECT_CLOSE(blocked.dgamma, plain.dgamma, 1e-5);
    Tensor y;
    be->batchnorm_normalize(g, xb, gamma, beta, plain.stats.mean, plain.stats.invstd, y);
    EXPECT_EQ(y.layout(), Layout::nchw16c);
  }
}
#endif

}  // namespace
}  // namespace dp::test
