#include "core/cpu_affinity.h"

#include <sched.h>

#include <algorithm>
#include <thread>

namespace dp {

std::vector<int> allowed_cores() {
  cpu_set_t mask;
  CPU_ZERO(&mask);
  std::vector<int> allowed;
  if (sched_getaffinity(0, sizeof mask, &mask) != 0) return allowed;
  for (int c = 0; c < CPU_SETSIZE; ++c)
    if (CPU_ISSET(c, &mask)) allowed.push_back(c);
  return allowed;
}

int usable_cores() {
  const size_t allowed = allowed_cores().size();
  if (allowed > 0) return static_cast<int>(allowed);
  return static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

}  // namespace dp
