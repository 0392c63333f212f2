// The bf16 weight gradient of wide convolutions as im2col + one GEMM per chunk of pixels.
//
// Why: oneDNN 2.6's bf16 backward-weights kernels (jit, not brgconv) run airbench94's 3x3
// layers of 64+ input channels well below its bf16 matmul on AMX, and its 256-channel ones on
// AVX512-BF16 without AMX, so gathering each output pixel's 3x3 input window into a row
// (im2col) and multiplying on oneDNN's matmul takes less time than they do. On fewer input
// channels the rows are too short for the matmul to gain back the gather (measurements:
// tests/bench/results/code-measurements-backend.md, 'weight_grad_gemm.h: im2col + GEMM').
//
// dW [C_out, taps * C_in] = dY^T [C_out, P] x col [P, taps * C_in] over the P = N * Ho * Wo
// output pixels, col's columns tap-major ([kh][kw][c]), summed in f32 chunk by chunk so the
// gathered windows stay small; the result is then laid out as OIHW. The operands are written
// in the layouts the matmul reads without copying: dY^T plain (transposed chunk by chunk)
// and col straight into oneDNN's blocked bf16 weights layout (see gather_windows_blocked).
// Both are built from NHWC: blocked (nChw16c) x and dy are first reordered to NHWC whole,
// once per call (the default layout on CPUs without AMX).
#pragma once

#include <cstdint>

#include "backend/backend.h"
#include "backend/cpu/activation_layout.h"
#include "backend/cpu/primitive_cache.h"

namespace dp::cpu {

class WeightGradGemm {
 public:
  // Pixels per GEMM: col's chunk is that many rows of taps * C_in bf16. With AMX 1024 (4.7 MB
  // at 256 channels, so the matmul reads the windows the gather has just written from the
  // caches); without AMX 4096, never swept there (the sizes' timings:
  // tests/bench/results/code-measurements-backend.md, 'weight_grad_gemm.h: default_chunk_pixels').
  static int64_t default_chunk_pixels();
  // col's pixel blocks: chunks are whole blocks, the last one zero-padded.
  static constexpr int64_t kPixelBlock = 32;
  // Out of line: Matmul is complete only there. `chunk_pixels` is rounded up to whole blocks.
  explicit WeightGradGemm(DnnlContext& ctx, int64_t chunk_pixels = default_chunk_pixels());
  ~WeightGradGemm();
  // Whether oneDNN has a bf16 matmul here (AMX or AVX512-BF16, as it detects them): the CPUs
  // where the gain was measured.
  static bool available();
  // Whether compute() can take this convolution: bf16 input and output gradient in one layout
  // (NHWC or nChw16c), stride 1, input channels in whole 64-channel groups (col's column
  // blocks) and a CPU with a bf16 matmul.
  static bool computes(const Conv2dGeometry& g, const Tensor& x, const Tensor& dy);
  // The fewest input channels where the GEMM was measured faster than oneDNN's kernel: 64 with
  // AMX, 256 on AVX512-BF16 without it.
  static int64_t min_input_channels();
  // Whether the backend routes this convolution's weight gradient here: computes() and at
  // least min_input_channels().
  static bool applies(const Conv2dGeometry& g, const Tensor& x, const Tensor& dy);
  // dw (f32 OIHW) from x and dy; computes(g, x, dy) must hold.
  void compute(const Conv2dGeometry& g, const Tensor& x, const Tensor& dy, Tensor& dw);
  // Primitives built so far: matmuls, transposes and the blocked operands' reorders.
  size_t cached_entries() const {
    return matmuls_.size() + transposes_.size() + converter_.cached_entries();
  }

 private:
  struct Matmul;
  struct Transpose;
  Matmul& matmul_for(int64_t rows, int64_t cols, int64_t c_out, bool accumulate);
  void transpose_dy(const Tensor& dy, int64_t first, int64_t pixels, int64_t rows,
                    int64_t c_out);
  DnnlContext& ctx_;
  int64_t chunk_pixels_;
  PrimitiveCache<Matmul> matmuls_;
  PrimitiveCache<Transpose> transposes_;
  // Tensors for their 64-byte alignment: the AMX matmul runs at half speed on operands that
  // are not (std::vector's 16 bytes).
  Tensor col_;  // one chunk of gathered windows (bf16, blocked)
  Tensor dyt_;  // one chunk of dY^T [C_out, chunk] (bf16), zero past the last pixel
  Tensor dw_;   // dW [C_out, taps * C_in] (f32)
  LayoutConverter converter_;
  Tensor x_nhwc_, dy_nhwc_;  // blocked operands reordered
};

}  // namespace dp::cpu
