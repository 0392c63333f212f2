// bfloat16 tensors on the host, for tests of bf16 arithmetic: rounding (core/bf16.h, the
// rounding the kernels use) and device transfers of bf16 tensors.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>

#include "backend/backend.h"
#include "core/bf16.h"
#include "test_util.h"

namespace dp::test {

// An f32 host tensor with every value rounded to the nearest bf16.
inline Tensor rounded_to_bf16(const Tensor& t) {
  Tensor r = Tensor::empty(t.shape());
  for (int64_t i = 0; i < t.numel(); ++i) r.data()[i] = bf16_value(bf16_bits(t.data()[i]));
  return r;
}

// An f32 host tensor as a bf16 host tensor (rounded): a bf16 activation of the CPU backend.
inline Tensor as_bf16(const Tensor& t) {
  Tensor r = Tensor::empty(t.shape(), DType::bf16);
  for (int64_t i = 0; i < t.numel(); ++i) r.data<uint16_t>()[i] = bf16_bits(t.data()[i]);
  return r;
}

// An NHWC f32 host tensor as a bf16 host tensor (rounded) in `layout`: a bf16 activation as
// the CPU backend keeps it.
inline Tensor as_bf16_in(const Tensor& nhwc, Layout layout) {
  Tensor r = as_bf16(layout == Layout::nchw16c ? in_blocked_order(nhwc) : nhwc);
  r.set_layout(layout);
  return r;
}

// An f32 host tensor as a bf16 device tensor (rounded).
inline Tensor upload_as_bf16(Backend& device, const Tensor& host) {
  const Tensor bits = as_bf16(host);
  Tensor d = device.allocate(host.shape(), DType::bf16);
  device.copy_from_host(bits.data<void>(), d);
  return d;
}

// A device tensor (f32 or bf16) as an f32 host tensor in NHWC order (copy_to_host's).
inline Tensor download_as_f32(Backend& device, const Tensor& d) {
  Tensor raw = Tensor::empty(d.shape(), d.dtype());
  device.copy_to_host(d, raw.data<void>());
  if (d.dtype() == DType::f32) return raw;
  Tensor out = Tensor::empty(d.shape());
  for (int64_t i = 0; i < d.numel(); ++i) out.data()[i] = bf16_value(raw.data<uint16_t>()[i]);
  return out;
}

// A bf16 result against the f32 value it stands for (`ref`, computed from the same inputs in
// f32): a bf16 tensor, every element within one bf16 step of ref's rounding, and at least 99%
// of them exactly that rounding (a different f32 summation order moves the rest). Compared in
// NHWC order whatever layout either is in.
// `long_sums`: each value is a sum of ~10^3 products (a convolution), whose f32 rounding is of
// the largest values' order, so an element that nearly cancels (|ref| ~1e-6 of the largest)
// moves by more than its own bf16 step with the summation order: the step is then at least
// 2^-20 of the largest |ref|.
inline void expect_rounded_from(Backend& be, const Tensor& got, const Tensor& ref_any,
                                const std::string& what, bool long_sums = false) {
  ASSERT_EQ(got.dtype(), DType::bf16) << what;
  ASSERT_EQ(got.numel(), ref_any.numel()) << what;
  const Tensor g = download_as_f32(be, got), ref = in_nhwc_order(ref_any);
  int64_t exact = 0, worst = -1;
  float largest = 0;
  for (int64_t i = 0; i < ref.numel(); ++i) largest = std::max(largest, std::abs(ref.data()[i]));
  const float summation_floor = long_sums ? std::ldexp(largest, -20) : 0.f;
  for (int64_t i = 0; i < ref.numel(); ++i) {
    const float want = bf16_value(bf16_bits(ref.data()[i]));
    if (g.data()[i] == want) {
      ++exact;
      continue;
    }
    const float mag = std::max(std::abs(want), std::abs(g.data()[i]));
    const float step =  // bf16: 8 significant bits
        std::max(std::ldexp(1.f, std::ilogb(mag) - 7), summation_floor);
    if (!(std::abs(g.data()[i] - want) <= step)) worst = i;
  }
  const int64_t at = std::max<int64_t>(worst, 0);
  EXPECT_EQ(worst, -1) << what << ": element " << worst << " is " << g.data()[at] << ", f32 gives "
                       << ref.data()[at];
  EXPECT_GE(static_cast<double>(exact), 0.99 * ref.numel())
      << what << ": " << exact << " of " << ref.numel() << " are the f32 value rounded";
}

}  // namespace dp::test
