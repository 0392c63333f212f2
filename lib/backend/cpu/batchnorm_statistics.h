// Batch-norm statistics shared by the CPU backend's batch-norm kernels (oneDNN's, the fused
// add + ReLU and the fused GELU): one owner for how a channel's moments become its mean and
// biased variance, and for PyTorch's running-statistics update.
#pragma once

#include <algorithm>

#include "backend/backend.h"

namespace dp::cpu {

struct ChannelMoments {
  double mean, variance;  // variance: biased (over the batch's count), what normalises it
};

// A channel's moments from one pass over its values taken about `shift` (its first value, so
// E[(x-s)^2] - E[x-s]^2 does not cancel for a large mean and small spread): `sum` and
// `square_sum` of (x - shift) over `count` values. Rounding can leave the variance a hair below
// zero; it is clamped to 0 with std::max(v, 0.0), which keeps a NaN variance NaN (a NaN input
// poisons mean and variance alike, as PyTorch's does), unlike std::max(0.0, v).
inline ChannelMoments shifted_moments(double shift, double sum, double square_sum, double count) {
  const double centred = sum / count;
  return {shift + centred, std::max(square_sum / count - centred * centred, 0.0)};
}

// PyTorch's running statistics: running = (1 - m) * running + m * batch, with the unbiased
// batch variance (saved_var is the biased one that normalised the batch).
void update_running_statistics(const BatchNormGeometry& g, const Tensor& saved_mean,
                               const Tensor& saved_var, Tensor& running_mean, Tensor& running_var);

}  // namespace dp::cpu
