// CpuBackend's per-channel bias (a convolution's bias), forward and backward: OpenMP loops over
// the activation's channel rows (channel_rows.h), whose sums backward uses. f32 or bf16
// activations; bf16 ones are computed in f32 (forward rounds each sum once).
#include <vector>

#include "backend/cpu/channel_rows.h"
#include "backend/cpu/cpu_backend.h"
#include "backend/cpu/element_access.h"
#include "backend/cpu/openmp_threshold.h"
#include "core/error.h"

namespace dp::cpu {
namespace {

// The activation as channel rows, after checking that the bias has one value per channel.
ChannelRows bias_rows(const Tensor& t, const Tensor& b, const char* op) {
  DP_CHECK(t.rank() == 4 && b.numel() == t.dim(3), "{}: activation {} and bias {} disagree", op,
           to_string(t.shape()), to_string(b.shape()));
  return channel_rows(t.dim(0), t.dim(1), t.dim(2), t.dim(3), t.layout());
}

// T: float or uint16_t (bf16 bits).
template <typename T>
void add_bias(const ChannelRows& rows, const float* pb, T* py, int64_t numel) {
#pragma omp parallel for if (numel > kParallelMin)
  for (int64_t r = 0; r < rows.rows; ++r) {
    T* out = py + r * rows.width;
    const float* bias = pb + rows.first_channel(r);
#pragma omp simd
    for (int64_t k = 0; k < rows.width; ++k) store(out[k], widen(out[k]) + bias[k]);
  }
}

template <typename T>
std::vector<double> channel_sums(const ChannelRows& rows, int64_t c, const T* pdy) {
  return sum_over_rows(rows, c, 1, [&](int64_t r, int64_t c0, double* acc) {
    const T* row = pdy + r * rows.width;
    for (int64_t j = 0; j < rows.width; ++j) acc[c0 + j] += widen(row[j]);
  });
}

}  // namespace

void CpuBackend::channel_bias_forward(const Tensor& b, Tensor& y) {
  const ChannelRows rows = bias_rows(y, b, "channel_bias_forward");
  with_element_type(y, "channel_bias_forward",
                    [&](auto t) { add_bias(rows, b.data(), y.data<decltype(t)>(), y.numel()); });
}

void CpuBackend::channel_bias_backward(const Tensor& dy, Tensor& db) {
  DP_CHECK(dy.rank() == 4, "channel_bias_backward expects {{N,H,W,C}}, got {}",
           to_string(dy.shape()));
  const int64_t c = dy.dim(3);
  db.ensure({c});
  const ChannelRows rows = bias_rows(dy, db, "channel_bias_backward");
  std::vector<double> sum;
  with_element_type(dy, "channel_bias_backward",
                    [&](auto t) { sum = channel_sums(rows, c, dy.data<decltype(t)>()); });
  float* pdb = db.data();
  for (int64_t k = 0; k < c; ++k) pdb[k] = static_cast<float>(sum[k]);
}

}  // namespace dp::cpu
