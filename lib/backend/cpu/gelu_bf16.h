// GELU (erf form, torch.nn.GELU()) forward and backward over flat bf16 arrays on AVX512-BF16
// CPUs: each element computed in f32 (gelu_simd.h) and rounded once, as oneDNN's eltwise and
// PyTorch's bf16 GELU do. Why our own: one pass with a polynomial for |x| <= 3 is faster than
// oneDNN 2.6's erf-form eltwise over airbench's whitening maps (24 channels, 31x31) every step
// (tests/bench/results/2026-12-04-cpu-airbench94-whitening-gelu.txt). Elementwise, so any layout.
#pragma once

#include "core/tensor.h"

namespace dp::cpu {

// True on a CPU with AVX512-BF16 for bf16 operands; otherwise the caller keeps oneDNN's GELU.
bool gelu_bf16_applies(DType dtype);

// y = GELU(x), y in x's shape and layout.
void gelu_bf16_forward(const Tensor& x, Tensor& y);
// dx = dy * GELU'(x); dy holds x's elements in x's order (the caller reorders it first).
void gelu_bf16_backward(const Tensor& x, const Tensor& dy, Tensor& dx);

}  // namespace dp::cpu
