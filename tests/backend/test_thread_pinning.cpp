// Thread pinning of the CPU backend: each OpenMP thread ends up bound to exactly one core of
// the process's mask, distinct cores for distinct threads, this rank's slice when the mask is
// the whole node's; more threads than cores are left alone. (CTest runs each test in its own
// process, so the pinning does not leak into other tests.)
#include <gtest/gtest.h>
#include <omp.h>
#include <pthread.h>
#include <sched.h>

#include <set>
#include <vector>

#include "backend/cpu/thread_pinning.h"

namespace dp::cpu {
namespace {

std::vector<int> allowed_cores() {
  cpu_set_t mask;
  CPU_ZERO(&mask);
  EXPECT_EQ(sched_getaffinity(0, sizeof mask, &mask), 0);
  std::vector<int> cores;
  for (int c = 0; c < CPU_SETSIZE; ++c)
    if (CPU_ISSET(c, &mask)) cores.push_back(c);
  return cores;
}

// The single core each thread of a `threads`-wide team is bound to (-1: not exactly one).
std::vector<int> team_cores(int threads) {
  std::vector<int> cores(threads, -1);
#pragma omp parallel num_threads(threads)
  {
    cpu_set_t mask;
    CPU_ZERO(&mask);
    pthread_getaffinity_np(pthread_self(), sizeof mask, &mask);
    if (CPU_COUNT(&mask) == 1)
      for (int c = 0; c < CPU_SETSIZE; ++c)
        if (CPU_ISSET(c, &mask)) cores[omp_get_thread_num()] = c;
  }
  return cores;
}

TEST(ThreadPinning, EachThreadGetsItsOwnCore) {
  const std::vector<int> allowed = allowed_cores();
  const int threads = static_cast<int>(allowed.size());
  const std::string what = pin_openmp_threads(threads, 0, 1);
  EXPECT_EQ(what.rfind("pinned to cores", 0), 0u) << what;
  const std::vector<int> cores = team_cores(threads);
  EXPECT_EQ(cores, allowed) << what;
}

TEST(ThreadPinning, TheSecondLocalRankTakesTheNextSlice) {
  const std::vector<int> allowed = allowed_cores();
  if (allowed.size() < 2) GTEST_SKIP() << "needs two cores";
  const std::string what = pin_openmp_threads(1, 1, 2);  // rank 1 of 2, one thread each
  EXPECT_EQ(team_cores(1), std::vector<int>{allowed[1]}) << what;
}

TEST(ThreadPinning, MoreThreadsThanCoresAreLeftAlone) {
  const std::vector<int> allowed = allowed_cores();
  const int threads = static_cast<int>(allowed.size()) + 1;
  const std::string what = pin_openmp_threads(threads, 0, 1);
  EXPECT_EQ(what.rfind("threads not pinned", 0), 0u) << what;
  for (int core : team_cores(threads)) EXPECT_EQ(core, allowed.size() == 1 ? allowed[0] : -1);
}

}  // namespace
}  // namespace dp::cpu
