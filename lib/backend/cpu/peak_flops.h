// The machine's attainable f32 FLOP rate on the CPU backend's threads, measured with a large
// oneDNN matrix multiply (the best-case kernel: no memory-bandwidth limit, no layout work).
// `dptrain bench --peak` prints it; the benchmark scripts divide a model's achieved GFLOP/s by
// it to say how close training runs to the hardware.
#pragma once

#include <cstdint>
#include <string>

namespace dp::cpu {

struct PeakFlops {
  double gflops = 0;     // best of the repeats
  int64_t size = 0;      // M = N = K of the multiply
  std::string kernel;    // oneDNN's implementation name, e.g. "brg:avx512_core"
  int threads = 0;
};

// Uses the OpenMP thread count in effect (set threads > 0 to override it first).
PeakFlops measure_peak_flops(int threads = 0, int64_t size = 2048, int repeats = 10);

}  // namespace dp::cpu
