#include "backend/cpu/batchnorm_statistics.h"

namespace dp::cpu {

void update_running_statistics(const BatchNormGeometry& g, const Tensor& saved_mean,
                               const Tensor& saved_var, Tensor& running_mean, Tensor& running_var) {
  const float m = g.momentum;
  const float unbias =
      static_cast<float>(g.n * g.h * g.w) / static_cast<float>(g.n * g.h * g.w - 1);
  float* rm = running_mean.data();
  float* rv = running_var.data();
  const float* mean = saved_mean.data();
  const float* var = saved_var.data();
  for (int64_t c = 0; c < g.c; ++c) {
    rm[c] = (1 - m) * rm[c] + m * mean[c];
    rv[c] = (1 - m) * rv[c] + m * var[c] * unbias;
  }
}

}  // namespace dp::cpu
