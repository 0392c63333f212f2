// bfloat16 on the host, for tests of the CUDA backend's mixed precision: the rounding its
// kernels use (to nearest, ties to even; NaN stays NaN) and device transfers of bf16 tensors.
#pragma once

#include <cstdint>
#include <cstring>

#include "backend/backend.h"

namespace dp::test {

inline uint16_t bf16_bits(float v) {
  uint32_t u;
  std::memcpy(&u, &v, sizeof u);
  if ((u & 0x7fffffffu) > 0x7f800000u) return 0x7fc0;  // NaN
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

inline float bf16_value(uint16_t bits) {
  uint32_t u = static_cast<uint32_t>(bits) << 16;
  float v;
  std::memcpy(&v, &u, sizeof v);
  return v;
}

// An f32 host tensor with every value rounded to the nearest bf16.
inline Tensor rounded_to_bf16(const Tensor& t) {
  Tensor r = Tensor::empty(t.shape());
  for (int64_t i = 0; i < t.numel(); ++i) r.data()[i] = bf16_value(bf16_bits(t.data()[i]));
  return r;
}

// An f32 host tensor as a bf16 device tensor (rounded).
inline Tensor upload_as_bf16(Backend& device, const Tensor& host) {
  Tensor bits = Tensor::empty(host.shape(), DType::bf16);
  auto* out = bits.data<uint16_t>();
  for (int64_t i = 0; i < host.numel(); ++i) out[i] = bf16_bits(host.data()[i]);
  Tensor d = device.allocate(host.shape(), DType::bf16);
  device.copy_from_host(out, d);
  return d;
}

// A device tensor (f32 or bf16) as an f32 host tensor.
inline Tensor download_as_f32(Backend& device, const Tensor& d) {
  Tensor raw = Tensor::empty(d.shape(), d.dtype());
  device.copy_to_host(d, raw.data<void>());
  if (d.dtype() == DType::f32) return raw;
  Tensor out = Tensor::empty(d.shape());
  for (int64_t i = 0; i < d.numel(); ++i) out.data()[i] = bf16_value(raw.data<uint16_t>()[i]);
  return out;
}

}  // namespace dp::test
