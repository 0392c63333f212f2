// GELU(batch norm(x)) in training on bf16 activations, one op each way: airbench's pair, six
// times a step.
//
// Why: both ops are bound by memory traffic here. oneDNN's batch norm reads x twice for its
// statistics and once more to write z, and its GELU reads z and writes y: five passes over the
// tensor. Here the statistics take one pass and a second reads x and writes y. Backward goes
// from eight passes (GELU's three, batch norm's five) to six: pass 1 recomputes z from x, writes
// dz = dy * GELU'(z) to a scratch buffer and sums dz and dz * xhat (dbeta and dgamma); pass 2
// reads x and dz and writes dx.
//
// The roundings are those of the two ops composed: each computes in f32 from bf16 operands and
// rounds its result once, so z is rounded to bf16 before the GELU, and y, dz and dx after. The
// statistics (mean and biased variance, saved for backward; running statistics as PyTorch's)
// come from double sums about a per-channel shift. GELU is the erf form: for |z| <= 3 from one
// polynomial in z^2 each for Phi and GELU' (within 1e-7 and 2e-7, as PyTorch's f32
// 0.5 * z * (1 + erf(z / sqrt 2))), beyond from erfc by a Chebyshev fit of fractional error below
// 1.2e-7 (Numerical Recipes' erfcc; in f32 ~6e-8 z^2 more): where z < -5.5 that keeps GELU's
// tiny values, which PyTorch's f32 form and oneDNN's GELU round to 0 or a few bf16 steps off.
//
// AVX512-BF16; channels a multiple of 16, at most 256; NHWC or nChw16c (dy is taken in x's
// layout).
#pragma once

#include <cstdint>
#include <vector>

#include "backend/backend.h"

namespace dp::cpu {

// True where this CPU, type and geometry can run the fused op (else the caller composes it).
bool batchnorm_gelu_applies(const BatchNormGeometry& g, DType dtype);

// Working buffers, kept by the caller: they grow in the first step and are reused after.
struct BatchNormGeluScratch {
  std::vector<double> sums;        // per thread, two sums per channel
  std::vector<float> shift;        // forward: the statistics' per-channel shift
  std::vector<float> per_channel;  // the per-channel constants of the passes
  // backward: the batch norm's output gradient. A Tensor, as it grows without zero-filling: the
  // six layers' sizes alternate, and a vector's resize would clear the difference every time.
  Tensor dz;
};

// y = GELU(z), z = gamma * (x - mean) / sqrt(var + eps) + beta with this batch's statistics;
// saved_mean and saved_var (biased) as batchnorm_forward_train saves them. Shapes are checked by
// the caller.
void batchnorm_gelu_forward(const BatchNormGeometry& g, const Tensor& x, const Tensor& gamma,
                            const Tensor& beta, Tensor& y, Tensor& saved_mean, Tensor& saved_var,
                            BatchNormGeluScratch& scratch);

// From x, the GELU output's gradient dy and the forward's saved statistics: dx (bf16, in x's
// layout), dgamma and dbeta (f32).
void batchnorm_gelu_backward(const BatchNormGeometry& g, const Tensor& x, const Tensor& dy,
                             const Tensor& gamma, const Tensor& beta, const Tensor& saved_mean,
                             const Tensor& saved_var, Tensor& dx, Tensor& dgamma, Tensor& dbeta,
                             BatchNormGeluScratch& scratch);

}  // namespace dp::cpu
