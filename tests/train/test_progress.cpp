// Progress lines: throughput over the steps since the previous line, time left over the run.
#include <gtest/gtest.h>

#include <string>

#include "train/progress.h"

namespace dp {
namespace {

double fake_now = 0;
double fake_clock() { return fake_now; }

// The "<rate> img/s" field of a progress line.
std::string rate_of(const std::string& line) {
  const size_t end = line.find(" img/s");
  const size_t start = line.rfind(' ', end - 1) + 1;
  return line.substr(start, end - start);
}

TEST(Progress, ThroughputLeavesOutPausedTimeAndTimeLeftKeepsIt) {
  fake_now = 100;
  Progress progress(/*epochs=*/2, /*steps_per_epoch=*/10, /*steps_to_run=*/20,
                    /*global_batch=*/64, fake_clock);
  fake_now = 110;  // 10 steps in 10 s
  const std::string end_of_epoch = progress.line(1, 10, 1.0, 0.5, 0.1);
  EXPECT_EQ(rate_of(end_of_epoch), "64.0") << end_of_epoch;
  EXPECT_NE(end_of_epoch.find("eta 0:10"), std::string::npos) << end_of_epoch;
  fake_now = 140;  // a 30 s evaluation, then 5 steps in 5 s
  progress.paused(30);
  fake_now = 145;
  const std::string next = progress.line(2, 5, 1.0, 0.5, 0.1);
  EXPECT_EQ(rate_of(next), "64.0") << next;
  // 15 steps in 45 s so far: 3 s a step for the 5 left.
  EXPECT_NE(next.find("eta 0:15"), std::string::npos) << next;
}

}  // namespace
}  // namespace dp
