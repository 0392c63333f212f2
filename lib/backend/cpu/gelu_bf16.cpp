#include "backend/cpu/gelu_bf16.h"

#include <omp.h>

#include <algorithm>

#include "backend/cpu/gelu_simd.h"
#include "backend/cpu/openmp_threshold.h"
#include "core/error.h"

namespace dp::cpu {
namespace {

using simd::kLanes;

DP_AVX512BF16 inline __m512 load_masked(const uint16_t* p, __mmask16 m) {
  return simd::widen_bf16(_mm256_maskz_loadu_epi16(m, p));
}
DP_AVX512BF16 inline void store_masked(uint16_t* p, __mmask16 m, __m512 v) {
  _mm256_mask_storeu_epi16(p, m, simd::round_bf16(v));
}

DP_AVX512BF16 void forward_range(const uint16_t* x, uint16_t* y, int64_t from, int64_t to) {
  for (int64_t i = from; i < to; i += kLanes) {
    const __mmask16 m = simd::tail_mask(to - i);
    store_masked(y + i, m, simd::gelu(load_masked(x + i, m)));
  }
}

DP_AVX512BF16 void backward_range(const uint16_t* x, const uint16_t* dy, uint16_t* dx, int64_t from,
                                  int64_t to) {
  for (int64_t i = from; i < to; i += kLanes) {
    const __mmask16 m = simd::tail_mask(to - i);
    store_masked(dx + i, m,
                 _mm512_mul_ps(load_masked(dy + i, m), simd::gelu_slope(load_masked(x + i, m))));
  }
}

// body(from, to) over [0, n) in one chunk per thread, chunk bounds on 16-element groups.
template <typename Body>
void split_flat(int64_t n, Body&& body) {
#pragma omp parallel if (n > kParallelMin)
  {
    const int64_t threads = omp_get_num_threads(), t = omp_get_thread_num();
    const int64_t groups = (n + kLanes - 1) / kLanes;
    const int64_t from = std::min(n, groups * t / threads * kLanes);
    const int64_t to = std::min(n, groups * (t + 1) / threads * kLanes);
    if (from < to) body(from, to);
  }
}

}  // namespace

bool gelu_bf16_applies(DType dtype) { return simd::cpu_has_avx512_bf16() && dtype == DType::bf16; }

void gelu_bf16_forward(const Tensor& x, Tensor& y) {
  DP_CHECK(gelu_bf16_applies(x.dtype()), "gelu_bf16_forward: no kernel for these operands");
  const Layout layout = x.layout();  // before ensure: y may be x
  y.ensure(x.shape(), DType::bf16);
  y.set_layout(layout);
  const uint16_t* xs = x.data<uint16_t>();
  uint16_t* ys = y.data<uint16_t>();
  split_flat(x.numel(), [&](int64_t from, int64_t to) { forward_range(xs, ys, from, to); });
}

void gelu_bf16_backward(const Tensor& x, const Tensor& dy, Tensor& dx) {
  DP_CHECK(gelu_bf16_applies(x.dtype()) && dy.dtype() == DType::bf16 && dy.numel() == x.numel(),
           "gelu_bf16_backward: no kernel for these operands");
  const Layout layout = x.layout();  // before ensure: dx may be x
  dx.ensure(x.shape(), DType::bf16);
  dx.set_layout(layout);
  const uint16_t *xs = x.data<uint16_t>(), *dys = dy.data<uint16_t>();
  uint16_t* dxs = dx.data<uint16_t>();
  split_flat(x.numel(), [&](int64_t from, int64_t to) { backward_range(xs, dys, dxs, from, to); });
}

}  // namespace dp::cpu
