// Convolutions whose output map is small, computed as one matrix multiply over the whole batch.
//
// Why: oneDNN's convolution kernels block over the output pixels of one image, so on a 1x1 or
// 2x2 output map (ResNet-50's last two stages at 32x32 input) each kernel call multiplies 1-4
// rows against the whole weight matrix, re-reading the weights for every image; one GEMM over
// the batch reads them once (see tests/bench/results/code-measurements-backend.md).
//
// Two lowerings, both exact up to the summation order of the GEMM:
// - pointwise: a 1x1 convolution without padding is the [N*Ho*Wo, C] pixel matrix (the strided
//   pixels gathered first when stride > 1) times the [C, K] weight matrix.
// - dense: when every input pixel reaches every output pixel (3x3 pad 1 on a 2x2 or 1x1 map,
//   3x3 stride 2 from 2x2 to 1x1), the convolution is a fully connected layer from the image's
//   [H*W*C] values to its [Ho*Wo*K] outputs. Its weight matrix is assembled from the kernel taps
//   on every call (the weights change every step) and backward-weights folds the dense
//   gradient back onto the taps. No multiply is wasted: there is no zero in the dense matrix.
#pragma once

#include <vector>

#include "backend/backend.h"

namespace dp::cpu {

enum class ConvLowering { none, pointwise, dense };

// The lowering ConvAsGemm uses for a geometry (none: leave it to oneDNN's convolution).
ConvLowering conv_lowering_for(const Conv2dGeometry& g);

// DPTRAIN_CPU_CONV_GEMM=off keeps every convolution on oneDNN's kernels (for A/B timing).
bool conv_gemm_from_environment();

class ConvAsGemm {
 public:
  // `how` is conv_lowering_for(g), not none (the caller has decided already); shapes are
  // checked by the caller.
  void forward(ConvLowering how, const Conv2dGeometry& g, const Tensor& x, const Tensor& w,
               Tensor& y);
  void backward(ConvLowering how, const Conv2dGeometry& g, const Tensor& x, const Tensor& w,
                const Tensor& dy, Tensor* dx, Tensor& dw);

 private:
  // Working buffers, grown on the first step and reused after (no per-step allocation).
  std::vector<float> gathered_;       // pointwise, stride > 1: the strided input pixels
  std::vector<float> gathered_grad_;  // pointwise, stride > 1: their gradient
  std::vector<float> dense_;          // dense: the [Ho*Wo*K, H*W*C] weight matrix or its gradient
};

}  // namespace dp::cpu
