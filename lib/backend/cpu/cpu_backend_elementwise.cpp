// CpuBackend's elementwise ops (ReLU, residual add + ReLU, gradient accumulation, GELU, scale):
// OpenMP loops over whatever layout their first operand has; a second operand in another
// layout is reordered to it first.
#include "backend/cpu/cpu_backend.h"

#include <bit>
#include <cstdint>

#include "backend/cpu/gelu_bf16.h"
#include "backend/cpu/openmp_threshold.h"
#include "backend/operand_checks.h"

namespace dp::cpu {

void CpuBackend::relu_forward(const Tensor& x, Tensor& y) {
  check_f32("relu_forward", {&x});
  y.ensure(x.shape());
  y.set_layout(x.layout());
  const int64_t n = x.numel();
  const float* px = x.data();
  float* py = y.data();
#pragma omp parallel for simd if (n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) py[i] = px[i] > 0.f ? px[i] : 0.f;
}

void CpuBackend::relu_backward(const Tensor& y, const Tensor& dy, Tensor& dx) {
  check_f32("relu_backward", {&y, &dy});
  check_same_numel(y, dy, "relu_backward");
  const Tensor& dy_in = layouts_.in_layout(dy, y.layout(), scratch_.grad);
  dx.ensure(dy.shape());
  dx.set_layout(y.layout());
  const int64_t n = y.numel();
  const float* py = y.data();
  const float* pdy = dy_in.data();
  float* pdx = dx.data();
  // Both loads are unconditional so the select compiles to a vector blend, not a branch on the
  // data that mispredicts on half the elements (tests/bench/results/code-measurements-backend.md).
#pragma omp parallel for simd if (n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) {
    const float grad = pdy[i];
    pdx[i] = py[i] > 0.f ? grad : 0.f;
  }
}

void CpuBackend::add_relu_forward(const Tensor& a, const Tensor& b, Tensor& y) {
  check_f32("add_relu_forward", {&a, &b});
  check_same_numel(a, b, "add_relu_forward");
  const Tensor& b_in = layouts_.in_layout(b, a.layout(), scratch_.input);
  y.ensure(a.shape());
  y.set_layout(a.layout());
  const int64_t n = a.numel();
  const float* pa = a.data();
  const float* pb = b_in.data();
  float* py = y.data();
#pragma omp parallel for simd if (n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) {
    float s = pa[i] + pb[i];
    py[i] = s > 0.f ? s : 0.f;
  }
}

void CpuBackend::add_relu_backward(const Tensor& y, const Tensor& dy, Tensor& dx) {
  relu_backward(y, dy, dx);  // the same mask reaches both branches
}

void CpuBackend::accumulate(const Tensor& x, Tensor& y) {
  check_f32("accumulate", {&x, &y});
  check_same_numel(x, y, "accumulate");
  const Tensor& x_in = layouts_.in_layout(x, y.layout(), scratch_.input);
  const int64_t n = x.numel();
  const float* px = x_in.data();
  float* py = y.data();
#pragma omp parallel for simd if (n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) py[i] += px[i];
}

void CpuBackend::accumulate_relu_backward(const Tensor& x, const Tensor& relu_output, Tensor& y) {
  check_f32("accumulate_relu_backward", {&x, &relu_output, &y});
  check_same_numel(x, y, "accumulate_relu_backward");
  check_same_numel(relu_output, y, "accumulate_relu_backward mask");
  const Tensor& x_in = layouts_.in_layout(x, y.layout(), scratch_.input);
  const Tensor& mask_in = layouts_.in_layout(relu_output, y.layout(), scratch_.grad);
  const int64_t n = y.numel();
  const float* px = x_in.data();
  const float* pm = mask_in.data();
  float* py = y.data();
  // The mask is applied to the bits of the sum, so the loop stays a vector loop: written as a
  // select, GCC leaves a scalar loop with a branch that mispredicts on half the elements
  // (tests/bench/results/code-measurements-backend.md). Masked elements come out +0.f, as
  // relu_backward's.
#pragma omp parallel for simd if (n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) {
    const uint32_t keep = pm[i] > 0.f ? 0xffffffffu : 0u;
    py[i] = std::bit_cast<float>(std::bit_cast<uint32_t>(py[i] + px[i]) & keep);
  }
}

void CpuBackend::gelu_forward(const Tensor& x, Tensor& y) {
  if (gelu_bf16_applies(x.dtype())) return gelu_bf16_forward(x, y);
  gelu_.forward(x, y);
}

void CpuBackend::gelu_backward(const Tensor& x, const Tensor& dy, Tensor& dx) {
  check_same_numel(x, dy, "gelu_backward");
  const Tensor& dy_in_x_layout = layouts_.in_layout(dy, x.layout(), scratch_.grad);
  if (gelu_bf16_applies(x.dtype()) && dy.dtype() == DType::bf16)
    return gelu_bf16_backward(x, dy_in_x_layout, dx);
  gelu_.backward(x, dy_in_x_layout, dx);
}

void CpuBackend::scale(const Tensor& x, float alpha, Tensor& y) {
  check_f32("scale", {&x});
  if (&y != &x) {
    y.ensure(x.shape());
    y.set_layout(x.layout());
  }
  const int64_t n = x.numel();
  const float* px = x.data();
  float* py = y.data();
#pragma omp parallel for simd if (n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) py[i] = alpha * px[i];
}

}  // namespace dp::cpu
