// Element access for the CPU backend's own loops over f32 or bf16 activations: a loop written
// once as a template over the element type T (float, or uint16_t holding bf16 bits) reads
// every element widened to float and stores float results rounded to T.
#pragma once

#include <cstdint>

#include "core/bf16.h"
#include "core/error.h"
#include "core/tensor.h"

namespace dp::cpu {

inline float widen(float v) { return v; }
inline float widen(uint16_t bf16) { return bf16_value(bf16); }
inline void store(float& out, float v) { out = v; }
inline void store(uint16_t& out, float v) { out = bf16_bits(v); }

// Calls body(T{}) with T the element type of `t` (float for f32, uint16_t for bf16).
template <typename Body>
void with_element_type(const Tensor& t, const char* op, Body&& body) {
  if (t.dtype() == DType::bf16) return body(uint16_t{});
  DP_CHECK(t.dtype() == DType::f32, "{}: activation {} is not f32 or bf16", op,
           to_string(t.shape()));
  body(float{});
}

}  // namespace dp::cpu
