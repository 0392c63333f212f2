// nn::combine_moments, --sync-bn's combination of the ranks' per-channel (count, mean, m2):
// equal to the two-pass statistics of the concatenated values, for unequal counts and for a
// channel whose mean (1e4) dwarfs its spread (1e-2), where a sum and a sum of squares would
// cancel to nothing in float and lose half their digits in double.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "core/error.h"
#include "nn/sync_batchnorm.h"

namespace dp::nn {
namespace {

struct Moments {
  double count = 0, mean = 0, m2 = 0;
};

Moments two_pass(const std::vector<double>& v) {
  Moments m;
  m.count = static_cast<double>(v.size());
  for (double x : v) m.mean += x;
  m.mean /= m.count;
  for (double x : v) m.m2 += (x - m.mean) * (x - m.mean);
  return m;
}

TEST(CombineMoments, EqualsTheConcatenatedValues) {
  std::mt19937_64 gen(3);
  const std::vector<double> centre{0.0, 1e4}, spread{1.0, 1e-2};
  const std::vector<int> counts{1, 7, 4};  // three ranks, unequal
  const int64_t c = 2;
  std::vector<double> gathered;
  std::vector<std::vector<double>> all(c);
  for (int count : counts) {
    std::vector<std::vector<double>> mine(c);
    for (int64_t k = 0; k < c; ++k) {
      std::normal_distribution<double> d(centre[k], spread[k]);
      for (int i = 0; i < count; ++i) mine[k].push_back(d(gen));
      all[k].insert(all[k].end(), mine[k].begin(), mine[k].end());
    }
    gathered.push_back(count);
    for (int64_t k = 0; k < c; ++k) gathered.push_back(two_pass(mine[k]).mean);
    for (int64_t k = 0; k < c; ++k) gathered.push_back(two_pass(mine[k]).m2);
  }
  const CombinedMoments m = combine_moments(gathered, static_cast<int>(counts.size()), c);
  EXPECT_EQ(m.count, 12);
  for (int64_t k = 0; k < c; ++k) {
    const Moments ref = two_pass(all[k]);
    EXPECT_NEAR(m.mean[k], ref.mean, 1e-12 * std::max(1.0, std::abs(ref.mean))) << k;
    EXPECT_NEAR(m.m2[k], ref.m2, 1e-9 * ref.m2) << k;
  }
}

TEST(CombineMoments, RefusesARecordOfTheWrongLength) {
  EXPECT_THROW(combine_moments(std::vector<double>(6), 2, 2), Error);  // needs 2 * (2*2+1)
}

}  // namespace
}  // namespace dp::nn
