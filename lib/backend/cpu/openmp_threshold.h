// The size below which the CPU backend's own loops run on the calling thread.
#pragma once

#include <cstdint>

namespace dp::cpu {

// Below this many elements an OpenMP fork costs more than the loop it would split.
inline constexpr int64_t kParallelMin = 1 << 15;

}  // namespace dp::cpu
