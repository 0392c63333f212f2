// CpuBackend's softmax cross-entropy with label smoothing: loss, accuracy and the logits'
// gradient in one OpenMP loop over the rows, in double precision per row.
#include <cmath>

#include "backend/cpu/cpu_backend.h"
#include "backend/cpu/openmp_threshold.h"
#include "backend/operand_checks.h"
#include "core/error.h"

namespace dp::cpu {

float CpuBackend::softmax_cross_entropy(const Tensor& logits, const Tensor& labels,
                                        float label_smoothing, Tensor& dlogits, int64_t& correct) {
  check_loss_operands(logits, labels);
  check_f32("softmax_cross_entropy", {&logits});
  const int64_t n = logits.dim(0), k = logits.dim(1);
  dlogits.ensure(logits.shape());
  const float* z = logits.data();
  const int32_t* y = labels.data<int32_t>();
  float* dz = dlogits.data();
  for (int64_t i = 0; i < n; ++i)
    if (y[i] < 0 || y[i] >= k)
      throw DataError(fmt::format("label {} of sample {} is outside [0, {})", y[i], i, k));

  const double eps = label_smoothing;
  const float inv_n = 1.f / static_cast<float>(n);
  double total = 0;
  int64_t hits = 0;
#pragma omp parallel for reduction(+ : total, hits) if (n * k > kParallelMin)
  for (int64_t i = 0; i < n; ++i) {
    const float* row = z + i * k;
    float* grad = dz + i * k;
    int64_t argmax = 0;
    for (int64_t j = 1; j < k; ++j)
      if (row[j] > row[argmax]) argmax = j;
    const double max = row[argmax];
    double sum_exp = 0, sum_z = 0;
    for (int64_t j = 0; j < k; ++j) {
      sum_exp += std::exp(row[j] - max);
      sum_z += row[j];
    }
    const double log_sum = max + std::log(sum_exp);
    // -log p_y and mean_j(-log p_j) = log_sum - mean_j z_j
    const double nll = log_sum - row[y[i]];
    const double smooth = log_sum - sum_z / static_cast<double>(k);
    total += (1 - eps) * nll + eps * smooth;
    hits += argmax == y[i];
    for (int64_t j = 0; j < k; ++j) {
      double p = std::exp(row[j] - log_sum);
      double target = eps / static_cast<double>(k) + (j == y[i] ? 1 - eps : 0.0);
      grad[j] = static_cast<float>(p - target) * inv_n;
    }
  }
  correct = hits;
  return static_cast<float>(total / static_cast<double>(n));
}

}  // namespace dp::cpu
