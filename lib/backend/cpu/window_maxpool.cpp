#include "backend/cpu/window_maxpool.h"

#include <algorithm>

#include "backend/cpu/openmp_threshold.h"
#include "backend/cpu/simd_lanes.h"
#include "backend/operand_checks.h"
#include "core/error.h"

namespace dp::cpu {
namespace {

using simd::kLanes;
using simd::load16;
using simd::Planes;
using simd::store16_exact;

template <typename T>
DP_AVX512BW void forward_rows(const PoolGeometry& g, const Planes& planes, const T* x, T* y,
                              uint8_t* workspace) {
  const int64_t k = g.kernel, out_h = g.out_h(), out_w = g.out_w(), s = planes.stride;
  const int64_t rows = g.n * planes.count * out_h;  // (image, plane, output row)
#pragma omp parallel for if (rows * out_w * s > kParallelMin)
  for (int64_t row = 0; row < rows; ++row) {
    const int64_t plane = row / out_h, oh = row % out_h;
    const T* in = x + (plane * g.h + oh * k) * g.w * s;
    const int64_t out = row * out_w * s;
    for (int64_t ow = 0; ow < out_w; ++ow)
      for (int64_t l = 0; l < s; l += kLanes) {
        const T* window = in + ow * k * s + l;
        __m512 best = load16(window);
        __m512i at = _mm512_setzero_si512();
        for (int64_t place = 1; place < k * k; ++place) {
          const __m512 v = load16(window + (place / k * g.w + place % k) * s);
          const __mmask16 wins =
              _mm512_cmp_ps_mask(v, best, _CMP_GT_OQ) | _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
          best = _mm512_mask_blend_ps(wins, best, v);
          at = _mm512_mask_blend_epi32(wins, at, _mm512_set1_epi32(static_cast<int>(place)));
        }
        store16_exact(y + out + ow * s + l, best);
        _mm_storeu_si128(reinterpret_cast<__m128i*>(workspace + out + ow * s + l),
                         _mm512_cvtepi32_epi8(at));
      }
  }
}

// One input row per iteration, written left to right: each covered pixel takes dy where the
// workspace names it and 0 elsewhere; uncovered columns, and rows below the last window, take 0.
template <typename T>
DP_AVX512BW void backward_rows(const PoolGeometry& g, const Planes& planes, const T* dy,
                               const uint8_t* workspace, T* dx) {
  const int64_t k = g.kernel, out_h = g.out_h(), out_w = g.out_w(), s = planes.stride;
  const int64_t rows = g.n * planes.count * g.h;  // (image, plane, input row)
#pragma omp parallel for if (rows * g.w * s > kParallelMin)
  for (int64_t row = 0; row < rows; ++row) {
    const int64_t plane = row / g.h, ih = row % g.h, oh = ih / k;
    T* in = dx + row * g.w * s;
    int64_t covered = 0;
    if (oh < out_h) {
      const int64_t first = (plane * out_h + oh) * out_w * s;
      for (int64_t ow = 0; ow < out_w; ++ow)
        for (int64_t kw = 0; kw < k; ++kw) {
          const __m512i place = _mm512_set1_epi32(static_cast<int>(ih % k * k + kw));
          for (int64_t l = 0; l < s; l += kLanes) {
            const int64_t o = first + ow * s + l;
            const __m512i at = _mm512_cvtepu8_epi32(
                _mm_loadu_si128(reinterpret_cast<const __m128i*>(workspace + o)));
            const __mmask16 here = _mm512_cmpeq_epi32_mask(at, place);
            store16_exact(in + (ow * k + kw) * s + l, _mm512_maskz_mov_ps(here, load16(dy + o)));
          }
        }
      covered = out_w * k;
    }
    std::fill(in + covered * s, in + g.w * s, T{0});
  }
}

template <typename Body>
void with_type(DType dtype, Body&& body) {
  if (dtype == DType::bf16) return body(uint16_t{});
  DP_CHECK(dtype == DType::f32, "window max pool: activations are f32 or bf16");
  body(float{});
}

}  // namespace

bool window_maxpool_handles(const PoolGeometry& g, DType dtype) {
  return simd::cpu_has_avx512bw() && (dtype == DType::f32 || dtype == DType::bf16) &&
         g.kernel == g.stride && g.pad == 0 && g.kernel * g.kernel <= 256 && g.c % kLanes == 0 &&
         g.out_h() > 0 && g.out_w() > 0;
}

void window_maxpool_forward(const PoolGeometry& g, const Tensor& x, Tensor& y, Tensor& workspace) {
  DP_CHECK(window_maxpool_handles(g, x.dtype()), "window max pool cannot take k={} s={} p={} c={}",
           g.kernel, g.stride, g.pad, g.c);
  check_pool_input(g, x, "maxpool_forward");
  const Shape out{g.n, g.out_h(), g.out_w(), g.c};
  y.ensure(out, x.dtype());
  workspace.ensure(out, DType::u8);
  const Planes planes(x.layout(), g.c);
  with_type(x.dtype(), [&]<typename T>(T) {
    forward_rows(g, planes, x.data<T>(), y.data<T>(), workspace.data<uint8_t>());
  });
  y.set_layout(x.layout());
  workspace.set_layout(x.layout());
}

void window_maxpool_backward(const PoolGeometry& g, const Tensor& dy, const Tensor& workspace,
                             Tensor& dx) {
  check_pool_output_gradient(g, dy, "maxpool_backward");
  const Shape out{g.n, g.out_h(), g.out_w(), g.c};
  DP_CHECK(workspace.shape() == out && workspace.dtype() == DType::u8,
           "maxpool workspace {} does not match geometry; maxpool_forward must run first",
           to_string(workspace.shape()));
  DP_CHECK(dy.layout() == workspace.layout(), "maxpool gradient is not in its workspace's layout");
  dx.ensure({g.n, g.h, g.w, g.c}, dy.dtype());
  const Planes planes(dy.layout(), g.c);
  with_type(dy.dtype(), [&]<typename T>(T) {
    backward_rows(g, planes, dy.data<T>(), workspace.data<uint8_t>(), dx.data<T>());
  });
  dx.set_layout(dy.layout());
}

}  // namespace dp::cpu
