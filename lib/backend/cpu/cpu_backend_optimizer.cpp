// CpuBackend's optimizer step (PyTorch SGD over the flat buffers) and the sum of squares that
// the gradient-norm checks read.
#include "backend/cpu/cpu_backend.h"
#include "backend/cpu/openmp_threshold.h"
#include "backend/operand_checks.h"

namespace dp::cpu {

void CpuBackend::sgd_step(const SgdHyper& h, Tensor& params, const Tensor& grads,
                          Tensor& momentum_buffer, const Tensor& decay_mask) {
  check_same_numel(params, grads, "sgd_step grads");
  const bool use_momentum = h.momentum != 0.f;
  if (use_momentum) check_same_numel(params, momentum_buffer, "sgd_step momentum buffer");
  const bool masked = decay_mask.defined();
  if (masked) check_same_numel(params, decay_mask, "sgd_step decay mask");

  const int64_t n = params.numel();
  float* w = params.data();
  const float* g = grads.data();
  float* buf = use_momentum ? momentum_buffer.data() : nullptr;
  const float* mask = masked ? decay_mask.data() : nullptr;
  // Each thread's own copy of the hyperparameters: what lets the loop vectorise (sgd_update).
  const SgdHyper local = h;
#pragma omp parallel for simd firstprivate(local) if (n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) {
    float unused = 0;
    w[i] = sgd_update(local, w[i], g[i], masked ? mask[i] : 1.f, use_momentum,
                      use_momentum ? buf[i] : unused);
  }
}

double CpuBackend::sum_of_squares(const Tensor& t) {
  const int64_t n = t.numel();
  const float* p = t.data();
  double s = 0;
#pragma omp parallel for simd reduction(+ : s) if (n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) s += static_cast<double>(p[i]) * p[i];
  return s;
}

}  // namespace dp::cpu
