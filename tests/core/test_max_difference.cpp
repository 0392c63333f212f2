// The tests' own tolerance helper (tests/support/max_difference.h): a NaN anywhere, or an
// output of another length, must fail a tolerance check, never score 0 as std::max(err, NaN)
// or a comparison over the shorter length does.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "support/max_difference.h"

namespace dp::test {
namespace {

TEST(MaxDifference, NanCountsAsInfinitelyFar) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  EXPECT_EQ(abs_difference(1.0, 1.5), 0.5);
  EXPECT_TRUE(std::isinf(abs_difference(nan, 0.0)));
  EXPECT_TRUE(std::isinf(abs_difference(0.0, nan)));
  // A NaN before, after and among finite differences: the worst stays +inf.
  const std::vector<float> ref{1, 2, 3, 4};
  for (size_t at = 0; at < ref.size(); ++at) {
    std::vector<float> got = ref;
    got[at] = nan;
    EXPECT_TRUE(std::isinf(max_abs_difference(got, ref))) << "NaN at " << at;
  }
  EXPECT_EQ(max_abs_difference(std::vector<float>{1, 2, 3}, std::vector<double>{1, 2.25, 3}), 0.25);
}

TEST(MaxDifference, AnOutputCutShortOrEmptyCountsAsInfinitelyFar) {
  const std::vector<float> ref{1, 2, 3, 4};
  EXPECT_TRUE(std::isinf(max_abs_difference(std::vector<float>{}, ref)));
  EXPECT_TRUE(std::isinf(max_abs_difference(std::vector<float>{1, 2}, ref)));
  EXPECT_TRUE(std::isinf(max_abs_difference(ref, std::vector<float>{1, 2, 3, 4, 5})));
  EXPECT_EQ(max_abs_difference(std::vector<float>{}, std::vector<float>{}), 0.0);
}

}  // namespace
}  // namespace dp::test
