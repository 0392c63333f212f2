// --sync-bn: PyTorch's SyncBatchNorm. In a training forward the batch statistics are those of
// every rank's samples together, and backward takes the matching cross-rank sums, so W ranks
// with batch B/W compute the gradients of one rank with batch B (torch.nn.SyncBatchNorm):
//
//   forward   each rank: its count n_r, mean_r, m2_r = sum (x - mean_r)^2 per channel
//             (Backend::batchnorm_local_moments); gathered from every rank and combined in
//             rank order (combine_moments): mean = sum n_r mean_r / N,
//             m2 = sum (m2_r + n_r (mean_r - mean)^2). Every term is non-negative, so nothing
//             cancels (one allreduce of sum x and sum x^2 would lose the variance of a channel
//             whose mean is large against its spread), and every rank adds the same numbers in
//             the same order, so all get the same bits (torch gathers per-rank mean / invstd /
//             count for the same reason). Normalisation uses var = m2 / N; the running
//             statistics move towards mean and the unbiased m2 / (N - 1), as torch.
//   backward  each rank: sum dy' and sum dy' * xhat over its values (its dbeta and dgamma,
//             which stay local: the gradient reducer averages them with every other
//             gradient); summed over ranks and divided by N, they give
//             dx = gamma * invstd * (dy' - mean(dy') - xhat * mean(dy' * xhat)).
//
// Why W ranks equal one: each rank's loss is the mean over its B/W samples, so its dy is W
// times the gradient of the global-batch loss (1/B) sum l_i at its samples. dx is linear in
// dy, so each rank's dx, and from it every local parameter gradient, is W times its share of
// the global-batch gradient; the reducer's average over W ranks then sums the shares: the
// one-rank gradient exactly, up to the order of additions.
//
// The exchanges go through the trainer's MPI communicator on the host (a few hundred bytes per
// layer): on the CUDA backend each sync batch norm waits for its device statistics, so a
// forward and a backward pay one host round trip per batch norm, and CUDA graphs are off.
#pragma once

#include <cstdint>
#include <vector>

#include "backend/backend.h"
#include "core/tensor.h"
#include "nn/stats_exchange.h"

namespace dp::nn {

struct CombinedMoments {
  double count = 0;              // values per channel over all ranks
  std::vector<double> mean, m2;  // per channel; m2 = sum of squared deviations from mean
};

// gathered: `ranks` records of [count, mean[0..c), m2[0..c)], in rank order.
CombinedMoments combine_moments(const std::vector<double>& gathered, int ranks, int64_t c);

// One batch norm layer's training passes with statistics over every rank.
class SyncBatchNorm {
 public:
  void forward(Backend& be, StatsExchange& exchange, const BatchNormGeometry& g, const Tensor& x,
               const Tensor& gamma, const Tensor& beta, Tensor& running_mean, Tensor& running_var,
               Tensor& y);
  // Needs this object's forward on the same x. dgamma and dbeta get this rank's sums.
  void backward(Backend& be, StatsExchange& exchange, const BatchNormGeometry& g, const Tensor& x,
                const Tensor& dy, const Tensor& gamma, const Tensor& beta, Tensor& dx,
                Tensor& dgamma, Tensor& dbeta);

 private:
  // The per-channel tensors of the last forward: the global mean and 1 / sqrt(var + eps).
  Tensor mean_, invstd_;
  Tensor local_a_, local_b_, mean_dy_, mean_dy_xhat_;
  std::vector<double> mine_, all_;
  double count_ = 0;  // the global batch's values per channel, for backward's means
};

}  // namespace dp::nn
