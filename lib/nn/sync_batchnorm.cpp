#include "nn/sync_batchnorm.h"

#include <cmath>

#include "core/error.h"

namespace dp::nn {
namespace {

// `t` as a device tensor of c floats, allocated on first use.
Tensor& channels(Backend& be, Tensor& t, int64_t c) {
  if (!t.defined() || t.numel() != c) t = be.allocate({c});
  return t;
}

std::vector<float> to_host(Backend& be, const Tensor& t) {
  std::vector<float> host(static_cast<size_t>(t.numel()));
  be.copy_to_host(t, host.data());
  return host;
}

void from_host(Backend& be, const std::vector<double>& v, Tensor& t) {
  std::vector<float> host(v.begin(), v.end());
  be.copy_from_host(host.data(), t);
}

}  // namespace

CombinedMoments combine_moments(const std::vector<double>& gathered, int ranks, int64_t c) {
  const size_t record = static_cast<size_t>(2 * c + 1);
  DP_CHECK(gathered.size() == record * static_cast<size_t>(ranks),
           "combine_moments: {} values for {} ranks of {} channels", gathered.size(), ranks, c);
  CombinedMoments m;
  m.mean.assign(c, 0.0);
  m.m2.assign(c, 0.0);
  for (int r = 0; r < ranks; ++r) m.count += gathered[r * record];
  DP_CHECK(m.count > 0, "combine_moments: no values");
  for (int r = 0; r < ranks; ++r) {
    const double* rec = gathered.data() + r * record;
    for (int64_t k = 0; k < c; ++k) m.mean[k] += rec[0] * rec[1 + k];
  }
  for (double& v : m.mean) v /= m.count;
  for (int r = 0; r < ranks; ++r) {
    const double* rec = gathered.data() + r * record;
    for (int64_t k = 0; k < c; ++k) {
      const double d = rec[1 + k] - m.mean[k];
      m.m2[k] += rec[1 + c + k] + rec[0] * d * d;
    }
  }
  return m;
}

void SyncBatchNorm::forward(Backend& be, StatsExchange& exchange, const BatchNormGeometry& g,
                            const Tensor& x, const Tensor& gamma, const Tensor& beta,
                            Tensor& running_mean, Tensor& running_var, Tensor& y) {
  const int64_t c = g.c;
  be.batchnorm_local_moments(g, x, channels(be, local_a_, c), channels(be, local_b_, c));
  const std::vector<float> mean = to_host(be, local_a_), m2 = to_host(be, local_b_);
  mine_.assign(1, static_cast<double>(g.n * g.h * g.w));
  mine_.insert(mine_.end(), mean.begin(), mean.end());
  mine_.insert(mine_.end(), m2.begin(), m2.end());
  const int ranks = exchange.size();
  all_.resize(mine_.size() * ranks);
  exchange.allgather(mine_.data(), static_cast<int64_t>(mine_.size()), all_.data());
  const CombinedMoments total = combine_moments(all_, ranks, c);
  DP_CHECK(total.count > 1,
           "sync batch norm needs more than one value per channel over all "
           "ranks, got {}",
           total.count);
  count_ = total.count;

  std::vector<double> invstd(c);
  for (int64_t k = 0; k < c; ++k)
    invstd[k] = 1.0 / std::sqrt(total.m2[k] / total.count + static_cast<double>(g.eps));
  from_host(be, total.mean, channels(be, mean_, c));
  from_host(be, invstd, channels(be, invstd_, c));

  // The running statistics, as torch: towards the mean and the unbiased variance.
  std::vector<float> rm = to_host(be, running_mean), rv = to_host(be, running_var);
  std::vector<double> new_mean(c), new_var(c);
  const double m = g.momentum;
  for (int64_t k = 0; k < c; ++k) {
    new_mean[k] = (1 - m) * rm[k] + m * total.mean[k];
    new_var[k] = (1 - m) * rv[k] + m * total.m2[k] / (total.count - 1);
  }
  from_host(be, new_mean, running_mean);
  from_host(be, new_var, running_var);

  be.batchnorm_normalize(g, x, gamma, beta, mean_, invstd_, y);
}

void SyncBatchNorm::backward(Backend& be, StatsExchange& exchange, const BatchNormGeometry& g,
                             const Tensor& x, const Tensor& dy, const Tensor& gamma,
                             const Tensor& beta, Tensor& dx, Tensor& dgamma, Tensor& dbeta) {
  DP_CHECK(mean_.defined() && count_ > 1, "sync batch norm: backward needs a forward first");
  const int64_t c = g.c;
  be.batchnorm_backward_sums(g, x, dy, gamma, beta, mean_, invstd_, dbeta, dgamma);
  const std::vector<float> sum_dy = to_host(be, dbeta), sum_dy_xhat = to_host(be, dgamma);
  mine_.assign(sum_dy.begin(), sum_dy.end());
  mine_.insert(mine_.end(), sum_dy_xhat.begin(), sum_dy_xhat.end());
  const int ranks = exchange.size();
  all_.resize(mine_.size() * ranks);
  exchange.allgather(mine_.data(), static_cast<int64_t>(mine_.size()), all_.data());
  // Summed in rank order on every rank, then divided by the global count.
  std::vector<double> mean_dy(c, 0.0), mean_dy_xhat(c, 0.0);
  for (int r = 0; r < ranks; ++r) {
    const double* rec = all_.data() + static_cast<size_t>(r) * 2 * c;
    for (int64_t k = 0; k < c; ++k) {
      mean_dy[k] += rec[k];
      mean_dy_xhat[k] += rec[c + k];
    }
  }
  for (int64_t k = 0; k < c; ++k) {
    mean_dy[k] /= count_;
    mean_dy_xhat[k] /= count_;
  }
  from_host(be, mean_dy, channels(be, mean_dy_, c));
  from_host(be, mean_dy_xhat, channels(be, mean_dy_xhat_, c));
  be.batchnorm_backward_input(g, x, dy, gamma, beta, mean_, invstd_, mean_dy_, mean_dy_xhat_, dx);
}

}  // namespace dp::nn
