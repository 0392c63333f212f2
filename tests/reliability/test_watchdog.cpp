// CollectiveWatchdog: silent while heartbeats keep coming; once they stop for longer than the
// timeout, counted from the watchdog's construction when none came, the process ends with the
// communication exit code and one line naming --collective-timeout (a death test: it runs in a
// child process).
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <thread>

#include "comm/collective_watchdog.h"

namespace {

using namespace std::chrono_literals;

TEST(CollectiveWatchdogDeathTest, EndsTheProcessWhenHeartbeatsStop) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        dp::CollectiveWatchdog watchdog(0.3);
        watchdog.beat();
        std::this_thread::sleep_for(5s);
      },
      testing::ExitedWithCode(5), "option --collective-timeout: no progress for");
}

// A job that stalls before its first heartbeat (in the start-up's collectives) is ended too.
TEST(CollectiveWatchdogDeathTest, EndsTheProcessWhenNoHeartbeatEverCame) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        dp::CollectiveWatchdog watchdog(0.3);
        std::this_thread::sleep_for(5s);
      },
      testing::ExitedWithCode(5), "option --collective-timeout: no progress for");
}

TEST(CollectiveWatchdog, QuietWhileBeating) {
  {
    // Beats 40x closer than the timeout, for 3x the timeout: a loaded machine's scheduling
    // stalls stay far below it.
    dp::CollectiveWatchdog watchdog(2.0);
    for (int i = 0; i < 120; ++i) {
      watchdog.beat();
      std::this_thread::sleep_for(50ms);
    }
  }  // destruction stops the thread without waiting out its timeout
  const auto start = std::chrono::steady_clock::now();
  {
    dp::CollectiveWatchdog watchdog(600);
    watchdog.beat();
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, 60s);  // a hang guard (the timeout is 600 s)
}

// A timeout <= 0 never ends the process: in a child, beat and wait long past the 0.3 s that
// ends it above, then exit 0 ourselves; a watchdog that fired would exit 5 with its line.
TEST(CollectiveWatchdogDeathTest, ZeroOrNegativeTimeoutNeverFires) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  for (const double timeout : {0.0, -1.0}) {
    EXPECT_EXIT(
        {
          {
            dp::CollectiveWatchdog watchdog(timeout);
            watchdog.beat();
            std::this_thread::sleep_for(800ms);
          }
          std::exit(0);
        },
        testing::ExitedWithCode(0), "")
        << "timeout " << timeout;
  }
}

}  // namespace
