// Per-channel reductions over NHWC or nChw16c activations, shared by the batch norm and bias
// backward passes. The sums add in double, in a fixed order (row chunks of a fixed count,
// summed in chunk order), so a result depends on the data alone, not on the thread count.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "backend/cpu/openmp_threshold.h"
#include "core/error.h"
#include "core/tensor.h"

namespace dp::cpu {

// The activation as rows of consecutive channels: NHWC is n*h*w rows of all c channels;
// nChw16c is n*(c/16)*h*w rows of 16, row r holding channels from ((r / hw) % (c/16)) * 16.
struct ChannelRows {
  int64_t rows, width, hw, blocks;
  bool blocked;
  int64_t first_channel(int64_t r) const {
    return blocked ? ((r / hw) % blocks) * kChannelBlock : 0;
  }
};

inline ChannelRows channel_rows(int64_t n, int64_t h, int64_t w, int64_t c, Layout layout) {
  const int64_t hw = h * w;
  if (layout != Layout::nchw16c) return {n * hw, c, hw, 1, false};
  DP_CHECK(c % kChannelBlock == 0, "nChw16c activations need channels in multiples of 16, got {}",
           c);
  return {n * (c / kChannelBlock) * hw, kChannelBlock, hw, c / kChannelBlock, true};
}

// Per-channel sums of `terms` quantities: add_row(r, c0, acc) adds row r's contributions to
// acc[t * c + c0 + j]. Rows go in kChunks fixed chunks, each summed by one thread into its own
// accumulator, then the chunks in order.
template <typename AddRow>
std::vector<double> sum_over_rows(const ChannelRows& rows, int64_t c, int terms, AddRow add_row) {
  constexpr int64_t kChunks = 64;
  const int64_t chunks = std::min(kChunks, rows.rows);
  std::vector<double> partial(static_cast<size_t>(chunks * terms * c), 0.0);
#pragma omp parallel for if (rows.rows * rows.width > kParallelMin)
  for (int64_t k = 0; k < chunks; ++k) {
    double* acc = partial.data() + k * terms * c;
    for (int64_t r = rows.rows * k / chunks; r < rows.rows * (k + 1) / chunks; ++r)
      add_row(r, rows.first_channel(r), acc);
  }
  std::vector<double> total(static_cast<size_t>(terms * c), 0.0);
  for (int64_t k = 0; k < chunks; ++k)
    for (int64_t i = 0; i < terms * c; ++i) total[i] += partial[k * terms * c + i];
  return total;
}

}  // namespace dp::cpu
