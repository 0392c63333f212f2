// bfloat16 on the host: the rounding oneDNN, cuDNN and PyTorch use (to nearest, ties to even;
// NaN stays NaN) and the exact widening back, for host loops over bf16 tensors and for tests.
#pragma once

#include <bit>
#include <cstdint>

namespace dp {

inline uint16_t bf16_bits(float v) {
  uint32_t u = std::bit_cast<uint32_t>(v);
  if ((u & 0x7fffffffu) > 0x7f800000u) return 0x7fc0;  // NaN
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

inline float bf16_value(uint16_t bits) {
  return std::bit_cast<float>(static_cast<uint32_t>(bits) << 16);
}

}  // namespace dp
