#include "backend/cpu/thread_pinning.h"

#include <omp.h>
#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <thread>
#include <vector>

#include <fmt/format.h>

namespace dp::cpu {
namespace {

std::string describe(const std::vector<int>& cores) {
  // "0-3" for a run of consecutive cores, "0,2,5" otherwise.
  bool consecutive = true;
  for (size_t i = 1; i < cores.size(); ++i) consecutive &= cores[i] == cores[i - 1] + 1;
  if (consecutive && cores.size() > 1) return fmt::format("{}-{}", cores.front(), cores.back());
  return fmt::format("{}", fmt::join(cores, ","));
}

}  // namespace

DefaultTeam default_team(int local_size) {
  const int node_cores = std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  const int share = std::max(1, node_cores / std::max(1, local_size));
  const int allowed = static_cast<int>(allowed_cores().size());
  if (allowed == 0 || allowed >= share) return {share, ""};
  return {allowed, fmt::format(" (the launcher bound this rank to {} of its {} cores; with "
                               "mpirun, --bind-to none lets dptrain place its threads)",
                               allowed, share)};
}

std::string pin_openmp_threads(int threads, int local_rank, int local_size) {
  const std::vector<int> allowed = allowed_cores();
  if (allowed.empty()) return "threads not pinned (no affinity mask)";
  if (threads < 1 || static_cast<int>(allowed.size()) < threads)
    return fmt::format("threads not pinned ({} threads, {} cores allowed)", threads,
                       allowed.size());
  // A mask with room for every local rank's team is the whole node's: take this rank's slice.
  const bool whole_node = static_cast<int>(allowed.size()) >= threads * std::max(1, local_size);
  const size_t first = whole_node ? static_cast<size_t>(local_rank) * threads : 0;
  const std::vector<int> cores(allowed.begin() + first, allowed.begin() + first + threads);
  std::atomic<int> failures{0};
#pragma omp parallel num_threads(threads)
  {
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(cores[omp_get_thread_num()], &one);
    if (pthread_setaffinity_np(pthread_self(), sizeof one, &one) != 0) ++failures;
  }
  if (failures > 0) return fmt::format("threads not pinned ({} bindings refused)", failures.load());
  return fmt::format("pinned to cores {}", describe(cores));
}

}  // namespace dp::cpu
