// A convolution over small patches with its bias and the GELU after it, in one pass, on
// AVX512-BF16 CPUs: airbench's whitening layer (2x2 over 3 channels to 24, then GELU), whose
// pieces on oneDNN (a 3-channel bf16 convolution writing nChw16c, a reorder to NHWC, the bias
// and the GELU) run slower than this one op (measurements:
// tests/bench/results/code-measurements-backend.md, 'patch_conv_gelu.h: one fused op').
//
// Each output pixel's taps (stride 1, no padding: k * k * c_in of them, at most 32) are read
// from the k input rows it spans, copied per thread to f32 rounded to bf16 as the bf16
// convolution rounds its input, and multiplied in f32 with the weights rounded to bf16, over
// every output channel (at most 64) in registers: z = conv(x, w) + b with the f32 bias added
// before z's one rounding to bf16 (as autocast's convolution adds its bias, which autocast
// rounds to bf16 first; the composed ops round the convolution and then the sum), and
// y = GELU(z) rounded.
#pragma once

#include "backend/backend.h"

namespace dp::cpu {

// True on a CPU with AVX512-BF16 for x f32 or bf16 NHWC, stride 1, no padding, at most 32 taps
// and at most 64 output channels.
bool patch_conv_gelu_applies(const Conv2dGeometry& g, DType x_dtype);

// y (bf16 NHWC) = GELU(z), z = conv(x, w) + b; z (bf16 NHWC) is written where given. w is
// {c_out, c_in, k, k} f32, b {c_out} f32; shapes are checked by the caller.
void patch_conv_bias_gelu(const Conv2dGeometry& g, const Tensor& x, const Tensor& w,
                          const Tensor& b, Tensor* z, Tensor& y);

}  // namespace dp::cpu
