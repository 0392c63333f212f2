// Thread pinning of the CPU backend: each OpenMP thread ends up bound to exactly one core of
// the process's mask, distinct cores for distinct threads, this rank's slice when the mask is
// the whole node's; more threads than cores are left alone; the default team fits the mask.
// Each test puts every thread's mask back as it found it (the fixture), so the tests hold in any
// order and in one process, not only in CTest's process per test.
#include <gtest/gtest.h>
#include <omp.h>
#include <pthread.h>
#include <sched.h>

#include <set>
#include <thread>
#include <vector>

#include "backend/cpu/thread_pinning.h"

namespace dp::cpu {
namespace {

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

// The widest team any test here makes: every OpenMP thread that can be reused is restored.
int widest_team() { return static_cast<int>(allowed_cores().size()) + 1; }

class ThreadPinning : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(sched_getaffinity(0, sizeof saved_, &saved_), 0);
    restore_team();  // the pool's threads as the main thread's
  }
  void TearDown() override { restore_team(); }

 private:
  void restore_team() {
    const int threads = widest_team();
#pragma omp parallel num_threads(threads)
    pthread_setaffinity_np(pthread_self(), sizeof saved_, &saved_);
  }
  cpu_set_t saved_;
};

TEST_F(ThreadPinning, EachThreadGetsItsOwnCore) {
  const std::vector<int> allowed = allowed_cores();
  const int threads = static_cast<int>(allowed.size());
  const std::string what = pin_openmp_threads(threads, 0, 1);
  EXPECT_EQ(what.rfind("pinned to cores", 0), 0u) << what;
  const std::vector<int> cores = team_cores(threads);
  EXPECT_EQ(cores, allowed) << what;
}

TEST_F(ThreadPinning, TheSecondLocalRankTakesTheNextSlice) {
  const std::vector<int> allowed = allowed_cores();
  if (allowed.size() < 2) GTEST_SKIP() << "needs two cores";
  const std::string what = pin_openmp_threads(1, 1, 2);  // rank 1 of 2, one thread each
  EXPECT_EQ(team_cores(1), std::vector<int>{allowed[1]}) << what;
}

TEST_F(ThreadPinning, MoreThreadsThanCoresAreLeftAlone) {
  const std::vector<int> allowed = allowed_cores();
  const int threads = static_cast<int>(allowed.size()) + 1;
  const std::string what = pin_openmp_threads(threads, 0, 1);
  EXPECT_EQ(what.rfind("threads not pinned", 0), 0u) << what;
  for (int core : team_cores(threads)) EXPECT_EQ(core, allowed.size() == 1 ? allowed[0] : -1);
}

// --threads 0 fits the team to the launcher's binding: cut to one core (mpirun -np 1's default
// binding on a small node), a rank gets one thread, and the log says why; the whole mask gives
// the node's share, never more threads than cores.
TEST_F(ThreadPinning, DefaultTeamFitsTheLaunchersBinding) {
  const std::vector<int> allowed = allowed_cores();
  const DefaultTeam whole = default_team(1);
  EXPECT_GE(whole.threads, 1);
  EXPECT_LE(whole.threads, static_cast<int>(allowed.size()));
  EXPECT_EQ(whole.note, "");
  const int node_cores = static_cast<int>(std::thread::hardware_concurrency());
  EXPECT_EQ(default_team(node_cores).threads, 1);  // one rank per core

  cpu_set_t saved, one;
  ASSERT_EQ(sched_getaffinity(0, sizeof saved, &saved), 0);
  CPU_ZERO(&one);
  CPU_SET(allowed.back(), &one);
  ASSERT_EQ(sched_setaffinity(0, sizeof one, &one), 0);
  const DefaultTeam bound = default_team(1);
  ASSERT_EQ(sched_setaffinity(0, sizeof saved, &saved), 0);
  EXPECT_EQ(bound.threads, 1);
  if (node_cores > 1)
    EXPECT_NE(bound.note.find("--bind-to none"), std::string::npos) << bound.note;
  else
    EXPECT_EQ(bound.note, "");
}

}  // namespace
}  // namespace dp::cpu
