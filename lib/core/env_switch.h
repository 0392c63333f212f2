// A two-valued switch read from an environment variable (DPTRAIN_CPU_CONV, DPTRAIN_CUDNN_BN):
// unset, empty or `off` gives false, `on` gives true, anything else is a usage error naming the
// variable and both values.
#pragma once

#include <cstdlib>
#include <cstring>

#include <fmt/format.h>

#include "core/error.h"

namespace dp {

inline bool env_switch(const char* name, const char* off, const char* on) {
  const char* v = std::getenv(name);
  if (!v || !*v || std::strcmp(v, off) == 0) return false;
  if (std::strcmp(v, on) == 0) return true;
  throw UsageError(fmt::format("{}={}: expected {} or {}", name, v, off, on));
}

}  // namespace dp
