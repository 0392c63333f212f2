#include "backend/cpu/patch_conv_gelu.h"

#include <omp.h>

#include <vector>

#include "backend/cpu/gelu_simd.h"
#include "backend/cpu/openmp_threshold.h"
#include "core/bf16.h"
#include "core/error.h"

namespace dp::cpu {
namespace {

using simd::kLanes;

constexpr int64_t kMaxTaps = 32, kMaxOut = 64;

// Tap t = (kh * k + kw) * c_in + c of every output channel, rounded to bf16, as
// [tap][registers * 16] f32 with zero padding; the bias padded the same way.
struct PatchWeights {
  int64_t taps, registers;
  std::vector<float> w, b;
  PatchWeights(const Conv2dGeometry& g, const Tensor& weights, const Tensor& bias)
      : taps(g.kernel * g.kernel * g.c_in),
        registers((g.c_out + kLanes - 1) / kLanes),
        w(static_cast<size_t>(taps * registers * kLanes), 0.f),
        b(static_cast<size_t>(registers * kLanes), 0.f) {
    const int64_t k = g.kernel;
    for (int64_t o = 0; o < g.c_out; ++o) {
      b[o] = bias.data()[o];
      for (int64_t c = 0; c < g.c_in; ++c)
        for (int64_t kh = 0; kh < k; ++kh)
          for (int64_t kw = 0; kw < k; ++kw) {
            const float v = weights.data()[((o * g.c_in + c) * k + kh) * k + kw];
            w[((kh * k + kw) * g.c_in + c) * registers * kLanes + o] = bf16_value(bf16_bits(v));
          }
    }
  }
};

// n values as f32 rounded to bf16 (bf16 input widens exactly).
DP_AVX512BF16 void rounded_row(const float* x, float* out, int64_t n) {
  for (int64_t i = 0; i < n; i += kLanes) {
    const __mmask16 m = simd::tail_mask(n - i);
    _mm512_mask_storeu_ps(out + i, m, simd::rounded_bf16(_mm512_maskz_loadu_ps(m, x + i)));
  }
}
DP_AVX512BF16 void rounded_row(const uint16_t* x, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = bf16_value(x[i]);
}

// One output row: rows holds the k input rows it reads (rounded, each w * c_in floats).
// REGISTERS: output channels / 16 rounded up, so the accumulators stay in registers.
template <int REGISTERS>
DP_AVX512BF16 void output_row(const Conv2dGeometry& g, const PatchWeights& pw, const float* rows,
                              uint16_t* z, uint16_t* y) {
  const int64_t row_floats = g.w * g.c_in, run = g.kernel * g.c_in, ow_count = g.out_w();
  const int64_t stride = REGISTERS * kLanes;
  for (int64_t ow = 0; ow < ow_count; ++ow) {
    __m512 acc[REGISTERS];
    for (int r = 0; r < REGISTERS; ++r) acc[r] = _mm512_loadu_ps(pw.b.data() + r * kLanes);
    const float* wt = pw.w.data();
    for (int64_t kh = 0; kh < g.kernel; ++kh) {
      // NHWC: the taps of one kernel row are run consecutive floats.
      const float* taps = rows + kh * row_floats + ow * g.c_in;
      for (int64_t j = 0; j < run; ++j, wt += stride) {
        const __m512 a = _mm512_set1_ps(taps[j]);
        for (int r = 0; r < REGISTERS; ++r)
          acc[r] = _mm512_fmadd_ps(a, _mm512_loadu_ps(wt + r * kLanes), acc[r]);
      }
    }
    const int64_t at = ow * g.c_out;
    for (int r = 0; r < REGISTERS; ++r) {
      const __mmask16 m = simd::tail_mask(g.c_out - r * kLanes);
      const __m256i zbits = simd::round_bf16(acc[r]);
      if (z) _mm256_mask_storeu_epi16(z + at + r * kLanes, m, zbits);
      _mm256_mask_storeu_epi16(y + at + r * kLanes, m,
                               simd::round_bf16(simd::gelu(simd::widen_bf16(zbits))));
    }
  }
}

using RowFn = void (*)(const Conv2dGeometry&, const PatchWeights&, const float*, uint16_t*,
                       uint16_t*);
RowFn row_kernel(int64_t registers) {
  static constexpr RowFn kernels[] = {output_row<1>, output_row<2>, output_row<3>, output_row<4>};
  return kernels[registers - 1];
}

template <typename T>
void run(const Conv2dGeometry& g, const T* xs, const PatchWeights& pw, uint16_t* zs, uint16_t* ys) {
  const int64_t oh_count = g.out_h(), row_floats = g.w * g.c_in;
  const int64_t out_row = g.out_w() * g.c_out;
  const RowFn kernel = row_kernel(pw.registers);
#pragma omp parallel if (g.n * oh_count * out_row > kParallelMin)
  {
    std::vector<float> rows(static_cast<size_t>(g.kernel * row_floats));
#pragma omp for schedule(static)
    for (int64_t r = 0; r < g.n * oh_count; ++r) {
      const int64_t n = r / oh_count, oh = r % oh_count;
      for (int64_t kh = 0; kh < g.kernel; ++kh)
        rounded_row(xs + (n * g.h + oh + kh) * row_floats, rows.data() + kh * row_floats,
                    row_floats);
      kernel(g, pw, rows.data(), zs ? zs + r * out_row : nullptr, ys + r * out_row);
    }
  }
}

}  // namespace

bool patch_conv_gelu_applies(const Conv2dGeometry& g, DType x_dtype) {
  return simd::cpu_has_avx512_bf16() && (x_dtype == DType::f32 || x_dtype == DType::bf16) &&
         g.stride == 1 && g.pad == 0 && g.trim == 0 && g.kernel * g.kernel * g.c_in <= kMaxTaps &&
         g.c_out >= 1 && g.c_out <= kMaxOut && g.out_h() > 0 && g.out_w() > 0;
}

void patch_conv_bias_gelu(const Conv2dGeometry& g, const Tensor& x, const Tensor& w,
                          const Tensor& b, Tensor* z, Tensor& y) {
  DP_CHECK(patch_conv_gelu_applies(g, x.dtype()) && x.layout() == Layout::nhwc,
           "patch convolution + GELU: no kernel for these operands");
  const Shape out{g.n, g.out_h(), g.out_w(), g.c_out};
  y.ensure(out, DType::bf16);
  if (z) z->ensure(out, DType::bf16);
  const PatchWeights pw(g, w, b);
  uint16_t* zs = z ? z->data<uint16_t>() : nullptr;
  if (x.dtype() == DType::f32)
    run(g, x.data<float>(), pw, zs, y.data<uint16_t>());
  else
    run(g, x.data<uint16_t>(), pw, zs, y.data<uint16_t>());
}

}  // namespace dp::cpu
