// The end of a residual block in training, y = relu(batchnorm(x) + residual), as one op.
//
// Why: on this backend batch norm and the elementwise loops are bound by memory traffic, not
// arithmetic. oneDNN's training batch norm reads x twice for its statistics and once more to
// write its output, and the residual add + ReLU then reads that output and the residual and
// writes y: seven passes over a block's output. Here the statistics take one pass (both moments
// at once, about a per-channel shift so the variance does not cancel) and a second pass reads x
// and the residual and writes y: four. oneDNN 2.6 has no batch norm + add + ReLU fusion.
//
// Statistics, running-statistics update and the saved mean and biased variance are those of
// OnednnBatchNorm::forward_train, so its backward consumes them unchanged. AVX-512F; channels
// a multiple of 16, in NHWC or nChw16c (x and the residual in the same layout).
#pragma once

#include <vector>

#include "backend/backend.h"

namespace dp::cpu {

// True where this CPU and geometry can run the fused op (else the caller composes it).
bool batchnorm_add_relu_applies(const BatchNormGeometry& g);

// Working buffers of fused_batchnorm_add_relu, kept by the caller: they grow to the largest
// shape in the first step and are reused after, so a step allocates nothing.
struct BatchNormAddReluScratch {
  std::vector<float> shift, scale, partials;
  std::vector<double> sums;
};

// Shapes are checked by the caller; residual is in x's layout; y is written in it.
void fused_batchnorm_add_relu(const BatchNormGeometry& g, const Tensor& x, const Tensor& gamma,
                              const Tensor& beta, const Tensor& residual, Tensor& y,
                              Tensor& saved_mean, Tensor& saved_var,
                              BatchNormAddReluScratch& scratch);

}  // namespace dp::cpu
