// Winograd F(4x4, 3x3) for the 16-to-16-channel 3x3 convolution (stride 1, pad 1): the first
// stage of CIFAR ResNet-20/32/56, where these layers are the largest single cost of a step.
//
// Why our own kernel: oneDNN 2.6's Winograd blocks its multiplies for 64+ channels and loses to
// its direct convolution at 16, which already runs near the machine's FLOP peak (timings:
// tests/bench/results/code-measurements-backend.md). F(4x4, 3x3) needs 4x fewer multiplies. At
// 16 channels one pixel's channels are one AVX-512 register, so a thread can transform a row of
// 4x4 output tiles, multiply the 36 transformed 16x16 weight matrices and transform back while
// the tiles are in L1: no transformed tensor goes through memory, which is what makes the
// transforms pay at 16 channels.
//
// Forward, backward-data (a forward pass of dy through the kernel flipped and transposed) and
// backward-weights (the adjoint of the forward's transforms: the products of transformed input
// and transformed output-gradient tiles, summed over the batch, then G^T (.) G). AVX-512F only:
// applies() is false on other CPUs, and the caller keeps oneDNN's direct convolution there.
// Activations are NHWC, which at 16 channels is the same bytes as nChw16c.
#pragma once

#include <vector>

#include "backend/backend.h"

namespace dp::cpu {

// DPTRAIN_CPU_CONV_THIN=on|off (unset: on), for A/B timing against oneDNN's direct kernel.
bool thin_winograd_from_environment();

class ThinWinograd {
 public:
  // True for 3x3 stride-1 pad-1 16-to-16 convolutions on maps of 8x8 or more, on a CPU with
  // AVX-512F.
  static bool applies(const Conv2dGeometry& g);

  // Shapes are checked by the caller. y is written NHWC.
  void forward(const Conv2dGeometry& g, const Tensor& x, const Tensor& w, Tensor& y);
  // dx is written in dx_layout (nhwc or nchw16c: at 16 channels the bytes are the same).
  void backward_data(const Conv2dGeometry& g, const Tensor& w, const Tensor& dy, Tensor& dx,
                     Layout dx_layout);
  // dw (OIHW) from x and dy, both [n, h, w, 16]: overwritten, as oneDNN's backward-weights does.
  void backward_weights(const Conv2dGeometry& g, const Tensor& x, const Tensor& dy, Tensor& dw);

 private:
  // out = in (*) kernel, both [n, h, w, 16], with the kernel already in transformed_weights_.
  void convolve(const Conv2dGeometry& g, const float* in, float* out);

  // Working buffers, grown on the first call and reused after (no per-step allocation).
  std::vector<float> transformed_weights_;  // [36][16 in][16 out]
  std::vector<float> padded_rows_;        // per thread: 6 zero-padded input rows (and for backward-
                                          // weights 4 output-gradient rows and the float sums)
  std::vector<double> weight_grad_sums_;  // per thread: backward-weights' running sums
};

}  // namespace dp::cpu
