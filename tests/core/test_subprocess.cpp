// run_command: a helper's output and exit status, and its deadline, which must hold even
// where the helper leaves a child behind holding its stdout.
#include <gtest/gtest.h>

#include <signal.h>

#include <chrono>
#include <cstdlib>

#include "core/subprocess.h"

namespace dp {
namespace {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

TEST(RunCommand, CapturesStdoutAndReportsTheExitStatus) {
  std::string out;
  EXPECT_EQ(run_command({"sh", "-c", "echo JobState=RUNNING"}, milliseconds(10000), &out), "");
  EXPECT_EQ(out, "JobState=RUNNING\n");
  out.clear();
  EXPECT_EQ(run_command({"sh", "-c", "echo partial; exit 3"}, milliseconds(10000), &out),
            "sh -c echo partial; exit 3 exited 3");
  EXPECT_EQ(out, "partial\n");
  EXPECT_EQ(run_command({"sh", "-c", "kill -9 $$"}, milliseconds(10000)),
            "sh -c kill -9 $$ ended by signal 9");
}

TEST(RunCommand, AMissingProgramIsNamed) {
  const std::string why = run_command({"dptrain-no-such-program"}, milliseconds(10000));
  EXPECT_NE(why.find("cannot run dptrain-no-such-program"), std::string::npos) << why;
}

TEST(RunCommand, AHungProgramIsKilledAtTheDeadline) {
  const auto start = Clock::now();
  const std::string why = run_command({"sleep", "60"}, milliseconds(300));
  EXPECT_EQ(why, "sleep 60 did not finish within 0.3 s; killed");
  EXPECT_LT(seconds_since(start), 10.0);
}

TEST(RunCommand, TheDeadlineHoldsWhenAChildKeepsStdoutOpen) {
  // The shell's child inherits the pipe: reading to EOF would wait for it. The group's kill
  // ends both; what was written before the deadline is kept.
  const auto start = Clock::now();
  std::string out;
  const std::string why =
      run_command({"sh", "-c", "echo started; sleep 60; echo never"}, milliseconds(500), &out);
  EXPECT_NE(why.find("did not finish within 0.5 s"), std::string::npos) << why;
  EXPECT_EQ(out, "started\n");
  EXPECT_LT(seconds_since(start), 10.0);
  // A program that exits while its background child still holds the pipe returns at its exit
  // (the child's stderr kept off the test's own, which CTest reads to its end).
  const auto second = Clock::now();
  out.clear();
  EXPECT_EQ(run_command({"sh", "-c", "sleep 60 2>/dev/null & echo $!"}, milliseconds(20000), &out),
            "");
  EXPECT_LT(seconds_since(second), 10.0);
  const pid_t left_behind = std::atoi(out.c_str());
  ASSERT_GT(left_behind, 0) << out;
  EXPECT_EQ(::kill(left_behind, SIGKILL), 0);
}

}  // namespace
}  // namespace dp
