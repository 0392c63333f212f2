// 16 channels at a time with AVX-512, for the CPU backend's own loops over activations in NHWC
// or nChw16c, f32 or bf16 (uint16_t bits). Callers check the CPU (__builtin_cpu_supports) before
// calling any function built with these targets.
#pragma once

// GCC 12 at -O3 takes the _mm512_undefined_* pass-through operands of <immintrin.h>'s widening,
// narrowing and shift intrinsics for uninitialised reads (a known false positive, reported at
// the header's lines, so silenced for the header only).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop

#include <cstdint>

#include "core/tensor.h"

// Each kernel built for its instruction set without building the library for it; callers check
// the matching cpu_has_* first.
#define DP_AVX512F __attribute__((target("avx512f")))
#define DP_AVX512BW __attribute__((target("avx512f,avx512bw,avx512vl")))
#define DP_AVX512BF16 __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))

namespace dp::cpu::simd {

constexpr int64_t kLanes = 16;  // f32 values per register
static_assert(kLanes == kChannelBlock, "one register holds one nChw16c block's channels");

// Whether this CPU runs the DP_AVX512F, DP_AVX512BW and DP_AVX512BF16 functions.
inline bool cpu_has_avx512f() {
  static const bool has = __builtin_cpu_supports("avx512f");
  return has;
}
inline bool cpu_has_avx512bw() {
  static const bool has = __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
  return has;
}
inline bool cpu_has_avx512_bf16() {
  static const bool has =
      __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512bf16");
  return has;
}

// The lanes of a group of 16 that hold the `left` elements still to go (all 16 for 16 or more).
inline __mmask16 tail_mask(int64_t left) {
  return left >= kLanes ? __mmask16(0xffff) : __mmask16((1u << left) - 1);
}

// Where channel groups sit: element (image n, plane q, pixel p, lane l) of a map of `pixels`
// pixels is at ((n * count + q) * pixels + p) * stride + l, and is channel q * stride + l.
// NHWC is one plane of c lanes per pixel; nChw16c is c/16 planes of 16.
struct Planes {
  int64_t count, stride;
  Planes(Layout layout, int64_t c)
      : count(layout == Layout::nchw16c ? c / kLanes : 1),
        stride(layout == Layout::nchw16c ? kLanes : c) {}
};

// 16 elements widened to f32 (bf16 widens exactly).
DP_AVX512BW inline __m512 load16(const float* p) { return _mm512_loadu_ps(p); }
DP_AVX512BW inline __m512 load16(const uint16_t* p) {
  const __m512i wide =
      _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  return _mm512_castsi512_ps(_mm512_slli_epi32(wide, 16));
}

// 16 values stored without rounding: only for values that are already of the element type
// (copies of inputs, zeros), where dropping a bf16's low half loses nothing.
DP_AVX512BW inline void store16_exact(float* p, __m512 v) { _mm512_storeu_ps(p, v); }
DP_AVX512BW inline void store16_exact(uint16_t* p, __m512 v) {
  const __m512i high = _mm512_srli_epi32(_mm512_castps_si512(v), 16);
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), _mm512_cvtepi32_epi16(high));
}

// f32 rounded to bf16 (to nearest, ties to even, as oneDNN's bf16 kernels; the instruction
// treats f32 denormals as zero), as bits, and those bits widened back.
DP_AVX512BF16 inline __m256i round_bf16(__m512 v) {
  return reinterpret_cast<__m256i>(_mm512_cvtneps_pbh(v));
}
DP_AVX512BW inline __m512 widen_bf16(__m256i bits) {
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(bits), 16));
}
DP_AVX512BF16 inline __m512 rounded_bf16(__m512 v) { return widen_bf16(round_bf16(v)); }
DP_AVX512BW inline void store_bits16(uint16_t* p, __m256i bits) {
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), bits);
}

}  // namespace dp::cpu::simd
