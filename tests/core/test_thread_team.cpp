// ThreadTeam: every thread runs its work and is joined by join() or the destructor; a team of
// none is allowed (pack's run_on_threads with one thread). Refusals are exercised under a real
// thread limit by data_pack_folder's test_thread_limit and reliability_bad_options.
#include <gtest/gtest.h>

#include <atomic>

#include "core/thread_team.h"

namespace dp {
namespace {

TEST(ThreadTeam, EveryThreadRunsAndIsJoined) {
  std::atomic<int> ran{0};
  {
    ThreadTeam team(4, [&] { ran.fetch_add(1); });
    EXPECT_EQ(team.started(), 4u);
    EXPECT_TRUE(team.refused().empty());
    team.join();
    EXPECT_EQ(ran.load(), 4);
    team.join();  // again: nothing left to join
  }
  {
    ThreadTeam team(3, [&] { ran.fetch_add(1); });
  }  // the destructor joins
  EXPECT_EQ(ran.load(), 7);
  ThreadTeam none(0, [&] { ran.fetch_add(1); });
  EXPECT_EQ(none.started(), 0u);
}

}  // namespace
}  // namespace dp
