// CpuBackend's batch norm in the four pieces that SyncBatchNorm puts the ranks' exchanges
// between (backend.h): OpenMP loops over NHWC or nChw16c activations, f32 or bf16 (computed in
// f32, bf16 results rounded once; element_access.h), reduced as channel_rows.h describes (in
// double, independent of the thread count).
#include <cmath>
#include <vector>

#include "backend/cpu/channel_rows.h"
#include "backend/cpu/cpu_backend.h"
#include "backend/cpu/element_access.h"
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

// Two passes: the mean, then squares about it (no cancellation, unlike sum and sum of squares
// in one pass).
template <typename T>
void local_moments(const BatchNormGeometry& g, const ChannelRows& rows, const T* px, Tensor& mean,
                   Tensor& m2) {
  const int64_t w = rows.width;
  std::vector<double> sum = sum_over_rows(rows, g.c, 1, [&](int64_t r, int64_t c0, double* acc) {
    const T* row = px + r * w;
    for (int64_t j = 0; j < w; ++j) acc[c0 + j] += widen(row[j]);
  });
  const double count = static_cast<double>(g.n * g.h * g.w);
  for (double& s : sum) s /= count;
  const std::vector<double>& mu = sum;
  std::vector<double> sq = sum_over_rows(rows, g.c, 1, [&](int64_t r, int64_t c0, double* acc) {
    const T* row = px + r * w;
    for (int64_t j = 0; j < w; ++j) {
      const double d = widen(row[j]) - mu[c0 + j];
      acc[c0 + j] += d * d;
    }
  });
  to_tensor(mu, 0, g.c, mean);
  to_tensor(sq, 0, g.c, m2);
}

template <typename T>
void normalize(const ChannelRows& rows, const Affine& a, bool relu, const T* px, T* py,
               int64_t numel) {
#pragma omp parallel for if (numel > kParallelMin)
  for (int64_t r = 0; r < rows.rows; ++r) {
    const int64_t c0 = rows.first_channel(r);
    const T* in = px + r * rows.width;
    T* out = py + r * rows.width;
    for (int64_t j = 0; j < rows.width; ++j) {
      const float v = widen(in[j]) * a.scale[c0 + j] + a.shift[c0 + j];
      store(out[j], relu && !(v > 0.f) ? 0.f : v);
    }
  }
}

// Per channel: the sum of dy and of dy * xhat (dy masked by the fused ReLU), as {2C} doubles.
template <typename T>
std::vector<double> backward_sums(const ChannelRows& rows, int64_t c, const Affine& a, bool relu,
                                  const T* px, const T* pdy, const float* pm, const float* pi) {
  const int64_t w = rows.width;
  return sum_over_rows(rows, c, 2, [&](int64_t r, int64_t c0, double* acc) {
    for (int64_t j = 0; j < w; ++j) {
      const int64_t k = c0 + j;
      const float xv = widen(px[r * w + j]);
      const float xhat = (xv - pm[k]) * pi[k];
      const float d = relu && !a.passes(xv, k) ? 0.f : widen(pdy[r * w + j]);
      acc[k] += d;
      acc[c + k] += static_cast<double>(d) * xhat;
    }
  });
}

// The per-channel operands of backward_input: gamma, mean, invstd, mean of dy, mean of dy*xhat.
struct InputGradTerms {
  const float *gamma, *mean, *invstd, *mean_dy, *mean_dy_xhat;
};

template <typename T>
void backward_input(const ChannelRows& rows, const Affine& a, bool relu, const InputGradTerms& t,
                    const T* px, const T* pdy, T* pdx, int64_t numel) {
#pragma omp parallel for if (numel > kParallelMin)
  for (int64_t r = 0; r < rows.rows; ++r) {
    const int64_t c0 = rows.first_channel(r);
    for (int64_t j = 0; j < rows.width; ++j) {
      const int64_t k = c0 + j, i = r * rows.width + j;
      const float xv = widen(px[i]);
      const float xhat = (xv - t.mean[k]) * t.invstd[k];
      const float d = relu && !a.passes(xv, k) ? 0.f : widen(pdy[i]);
      store(pdx[i], t.gamma[k] * t.invstd[k] * (d - t.mean_dy[k] - xhat * t.mean_dy_xhat[k]));
    }
  }
}

// The output gradient's checks: x's size and type.
void check_output_grad(const Tensor& x, const Tensor& dy, const char* op) {
  check_same_numel(x, dy, op);
  DP_CHECK(dy.dtype() == x.dtype(), "{}: output gradient and input differ in type", op);
}

}  // namespace

void CpuBackend::batchnorm_local_moments(const BatchNormGeometry& g, const Tensor& x, Tensor& mean,
                                         Tensor& m2) {
  check_channels(g, x, {});
  const ChannelRows rows = geometry_rows(g, x.layout());
  with_element_type(x, "batchnorm_local_moments",
                    [&](auto t) { local_moments(g, rows, x.data<decltype(t)>(), mean, m2); });
}

void CpuBackend::batchnorm_normalize(const BatchNormGeometry& g, const Tensor& x,
                                     const Tensor& gamma, const Tensor& beta, const Tensor& mean,
                                     const Tensor& invstd, Tensor& y) {
  check_channels(g, x, {&gamma, &beta, &mean, &invstd});
  const ChannelRows rows = geometry_rows(g, x.layout());
  y.ensure(x.shape(), x.dtype());
  y.set_layout(x.layout());
  const Affine a(g.c, gamma, beta, mean, invstd);
  with_element_type(x, "batchnorm_normalize", [&](auto t) {
    using T = decltype(t);
    normalize(rows, a, g.fuse_relu, x.data<T>(), y.data<T>(), x.numel());
  });
}

void CpuBackend::batchnorm_backward_sums(const BatchNormGeometry& g, const Tensor& x,
                                         const Tensor& dy, const Tensor& gamma, const Tensor& beta,
                                         const Tensor& mean, const Tensor& invstd, Tensor& sum_dy,
                                         Tensor& sum_dy_xhat) {
  const char* op = "batchnorm_backward_sums";
  check_channels(g, x, {&gamma, &beta, &mean, &invstd});
  check_output_grad(x, dy, op);
  const Tensor& dy_in = layouts_.in_layout(dy, x.layout(), scratch_.grad);
  const ChannelRows rows = geometry_rows(g, x.layout());
  const Affine a(g.c, gamma, beta, mean, invstd);
  std::vector<double> sums;
  with_element_type(x, op, [&](auto t) {
    using T = decltype(t);
    sums = backward_sums(rows, g.c, a, g.fuse_relu, x.data<T>(), dy_in.data<T>(), mean.data(),
                         invstd.data());
  });
  to_tensor(sums, 0, g.c, sum_dy);
  to_tensor(sums, g.c, g.c, sum_dy_xhat);
}

void CpuBackend::batchnorm_backward_input(const BatchNormGeometry& g, const Tensor& x,
                                          const Tensor& dy, const Tensor& gamma, const Tensor& beta,
                                          const Tensor& mean, const Tensor& invstd,
                                          const Tensor& mean_dy, const Tensor& mean_dy_xhat,
                                          Tensor& dx) {
  const char* op = "batchnorm_backward_input";
  check_channels(g, x, {&gamma, &beta, &mean, &invstd, &mean_dy, &mean_dy_xhat});
  check_output_grad(x, dy, op);
  const Tensor& dy_in = layouts_.in_layout(dy, x.layout(), scratch_.grad);
  const ChannelRows rows = geometry_rows(g, x.layout());
  dx.ensure(x.shape(), x.dtype());
  dx.set_layout(x.layout());
  const Affine a(g.c, gamma, beta, mean, invstd);
  const InputGradTerms terms{gamma.data(), mean.data(), invstd.data(), mean_dy.data(),
                             mean_dy_xhat.data()};
  with_element_type(x, op, [&](auto t) {
    using T = decltype(t);
    backward_input(rows, a, g.fuse_relu, terms, x.data<T>(), dy_in.data<T>(), dx.data<T>(),
                   x.numel());
  });
}

}  // namespace dp::cpu
