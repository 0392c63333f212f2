// The machine's attainable FLOP rate on the CPU backend's threads, in f32 or bf16, measured with
// a large oneDNN matrix multiply (the best-case kernel: no memory-bandwidth limit, no layout work
// in the timed calls).
// `dptrain bench --peak` prints it; the benchmark scripts divide a model's achieved GFLOP/s by
// it to say how close training runs to the hardware.
#pragma once

#include <cstdint>
#include <string>

#include "core/tensor.h"

namespace dp::cpu {

struct PeakFlops {
  double gflops = 0;   // best of the repeats
  int64_t size = 0;    // M = N = K of the multiply
  std::string kernel;  // oneDNN's implementation name, e.g. "brg:avx512_core"
  int threads = 0;
};

// Uses the OpenMP thread count in effect (set threads > 0 to override it first). bf16: bf16
// operands with f32 accumulation and output, B packed once beforehand in the layout oneDNN
// prefers (as the convolutions' weights are), on AMX or AVX512-BF16 where the CPU has them.
PeakFlops measure_peak_flops(int threads = 0, int64_t size = 2048, int repeats = 10,
                             DType dtype = DType::f32);

}  // namespace dp::cpu
