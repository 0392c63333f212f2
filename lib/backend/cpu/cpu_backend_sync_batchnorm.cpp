// CpuBackend's batch norm in the four pieces that SyncBatchNorm puts the ranks' exchanges
// between (backend.h): OpenMP loops over NHWC or nChw16c activations, reduced as
// channel_rows.h describes (in double, independent of the thread count).
#include <cmath>
#include <vector>

#include "backend/cpu/channel_rows.h"
#include "backend/cpu/cpu_backend.h"
#include "backend/cpu/openmp_threshold.h"
#include "backend/operand_checks.h"
#include "core/error.h"

namespace dp::cpu {
namespace {

ChannelRows geometry_rows(const BatchNormGeometry& g, Layout layout) {
  return channel_rows(g.n, g.h, g.w, g.c, layout);
}

// y = x * scale + shift per channel (scale = gamma * invstd, shift = beta - mean * scale), as
// oneDNN's batch norm computes it; backward recomputes the fused ReLU's mask from the same
// numbers, so it masks exactly the elements the forward zeroed.
struct Affine {
  std::vector<float> scale, shift;
  Affine(int64_t c, const Tensor& gamma, const Tensor& beta, const Tensor& mean,
         const Tensor& invstd)
      : scale(c), shift(c) {
    for (int64_t k = 0; k < c; ++k) {
      scale[k] = gamma.data()[k] * invstd.data()[k];
      shift[k] = beta.data()[k] - mean.data()[k] * scale[k];
    }
  }
  bool passes(float x, int64_t k) const { return x * scale[k] + shift[k] > 0.f; }
};

void to_tensor(const std::vector<double>& v, int64_t offset, int64_t c, Tensor& t) {
  t.ensure({c});
  float* p = t.data();
  for (int64_t i = 0; i < c; ++i) p[i] = static_cast<float>(v[offset + i]);
}

// The per-channel operands, each f32 {C} on the host.
void check_channels(const BatchNormGeometry& g, const Tensor& x,
                    std::initializer_list<const Tensor*> per_channel) {
  check_batchnorm_operands(g, x, per_channel);
  DP_CHECK(g.n * g.h * g.w > 0, "batch norm over an empty batch");
}

}  // namespace

void CpuBackend::batchnorm_local_moments(const BatchNormGeometry& g, const Tensor& x, Tensor& mean,
                                         Tensor& m2) {
  check_channels(g, x, {});
  const ChannelRows rows = geometry_rows(g, x.layout());
  const float* px = x.data();
  const int64_t w = rows.width;
  // Two passes: the mean, then squares about it (no cancellation, unlike sum and sum of
  // squares in one pass).
  std::vector<double> sum = sum_over_rows(rows, g.c, 1, [&](int64_t r, int64_t c0, double* acc) {
    const float* row = px + r * w;
    for (int64_t j = 0; j < w; ++j) acc[c0 + j] += row[j];
  });
  const double count = static_cast<double>(g.n * g.h * g.w);
  for (double& s : sum) s /= count;
  const std::vector<double>& mu = sum;
  std::vector<double> sq = sum_over_rows(rows, g.c, 1, [&](int64_t r, int64_t c0, double* acc) {
    const float* row = px + r * w;
    for (int64_t j = 0; j < w; ++j) {
      const double d = row[j] - mu[c0 + j];
      acc[c0 + j] += d * d;
    }
  });
  to_tensor(mu, 0, g.c, mean);
  to_tensor(sq, 0, g.c, m2);
}

void CpuBackend::batchnorm_normalize(const BatchNormGeometry& g, const Tensor& x,
                                     const Tensor& gamma, const Tensor& beta, const Tensor& mean,
                                     const Tensor& invstd, Tensor& y) {
  check_channels(g, x, {&gamma, &beta, &mean, &invstd});
  const ChannelRows rows = geometry_rows(g, x.layout());
  y.ensure(x.shape());
  y.set_layout(x.layout());
  const Affine a(g.c, gamma, beta, mean, invstd);
  const float* px = x.data();
  float* py = y.data();
  const bool relu = g.fuse_relu;
#pragma omp parallel for if (x.numel() > kParallelMin)
  for (int64_t r = 0; r < rows.rows; ++r) {
    const int64_t c0 = rows.first_channel(r);
    const float* in = px + r * rows.width;
    float* out = py + r * rows.width;
    for (int64_t j = 0; j < rows.width; ++j) {
      const float v = in[j] * a.scale[c0 + j] + a.shift[c0 + j];
      out[j] = relu && !(v > 0.f) ? 0.f : v;
    }
  }
}

void CpuBackend::batchnorm_backward_sums(const BatchNormGeometry& g, const Tensor& x,
                                         const Tensor& dy, const Tensor& gamma, const Tensor& beta,
                                         const Tensor& mean, const Tensor& invstd, Tensor& sum_dy,
                                         Tensor& sum_dy_xhat) {
  check_channels(g, x, {&gamma, &beta, &mean, &invstd});
  check_same_numel(x, dy, "batchnorm_backward_sums");
  const Tensor& dy_in = layouts_.in_layout(dy, x.layout(), scratch_.grad);
  const ChannelRows rows = geometry_rows(g, x.layout());
  const float *px = x.data(), *pdy = dy_in.data();
  const float *pm = mean.data(), *pi = invstd.data();
  const int64_t w = rows.width, c = g.c;
  const bool relu = g.fuse_relu;
  const Affine a(c, gamma, beta, mean, invstd);
  std::vector<double> sums = sum_over_rows(rows, c, 2, [&](int64_t r, int64_t c0, double* acc) {
    for (int64_t j = 0; j < w; ++j) {
      const int64_t k = c0 + j;
      const float xv = px[r * w + j];
      const float xhat = (xv - pm[k]) * pi[k];
      const float d = relu && !a.passes(xv, k) ? 0.f : pdy[r * w + j];
      acc[k] += d;
      acc[c + k] += static_cast<double>(d) * xhat;
    }
  });
  to_tensor(sums, 0, c, sum_dy);
  to_tensor(sums, c, c, sum_dy_xhat);
}

void CpuBackend::batchnorm_backward_input(const BatchNormGeometry& g, const Tensor& x,
                                          const Tensor& dy, const Tensor& gamma, const Tensor& beta,
                                          const Tensor& mean, const Tensor& invstd,
                                          const Tensor& mean_dy, const Tensor& mean_dy_xhat,
                                          Tensor& dx) {
  check_channels(g, x, {&gamma, &beta, &mean, &invstd, &mean_dy, &mean_dy_xhat});
  check_same_numel(x, dy, "batchnorm_backward_input");
  const Tensor& dy_in = layouts_.in_layout(dy, x.layout(), scratch_.grad);
  const ChannelRows rows = geometry_rows(g, x.layout());
  dx.ensure(x.shape());
  dx.set_layout(x.layout());
  const float *px = x.data(), *pdy = dy_in.data();
  const float *pg = gamma.data(), *pm = mean.data(), *pi = invstd.data();
  const float *pmd = mean_dy.data(), *pmdx = mean_dy_xhat.data();
  float* pdx = dx.data();
  const bool relu = g.fuse_relu;
  const Affine a(g.c, gamma, beta, mean, invstd);
#pragma omp parallel for if (x.numel() > kParallelMin)
  for (int64_t r = 0; r < rows.rows; ++r) {
    const int64_t c0 = rows.first_channel(r);
    for (int64_t j = 0; j < rows.width; ++j) {
      const int64_t k = c0 + j, i = r * rows.width + j;
      const float xhat = (px[i] - pm[k]) * pi[k];
      const float d = relu && !a.passes(px[i], k) ? 0.f : pdy[i];
      pdx[i] = pg[k] * pi[k] * (d - pmd[k] - xhat * pmdx[k]);
    }
  }
}

}  // namespace dp::cpu
