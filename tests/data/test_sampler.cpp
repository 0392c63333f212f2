// DistributedSampler: PyTorch DistributedSampler semantics for N not divisible by W, the rest
// of a resumed epoch re-split over another world size, and the evaluation sharding that
// counts every sample exactly once.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <set>

#include "core/error.h"
#include "data/distributed_sampler.h"

namespace dp::data {
namespace {

TEST(Sampler, Mt19937_64IsTheStandardGenerator) {
  // [rand.predef]: the 10000th output of a default-constructed mt19937_64.
  std::mt19937_64 rng;
  rng.discard(9999);
  EXPECT_EQ(rng(), 9981545732273789042ULL);
}

TEST(Sampler, PermutationIsAPermutationOfSeedAndEpoch) {
  auto p = epoch_permutation(1000, 7, 3);
  auto sorted = p;
  std::sort(sorted.begin(), sorted.end());
  for (int64_t i = 0; i < 1000; ++i) ASSERT_EQ(sorted[i], i);
  EXPECT_EQ(p, epoch_permutation(1000, 7, 3));
  EXPECT_NE(p, epoch_permutation(1000, 7, 4));
}

// Under PyTorch's seed + epoch, seed 1's epoch e is seed 0's epoch e+1, so runs with
// "different seeds" share most epoch orders. Every (seed, epoch) of a grid must differ.
TEST(Sampler, DistinctSeedEpochPairsGiveDistinctOrders) {
  std::set<std::vector<int64_t>> orders;
  for (uint64_t seed = 0; seed < 12; ++seed)
    for (int64_t epoch = 0; epoch < 12; ++epoch) orders.insert(epoch_permutation(500, seed, epoch));
  EXPECT_EQ(orders.size(), 144u);
  EXPECT_NE(epoch_permutation(500, 8, 2), epoch_permutation(500, 7, 3)) << "no seed + epoch aliasing";
  const auto a = epoch_permutation(500, 1, 0), b = epoch_permutation(500, 0, 1);
  EXPECT_FALSE(std::equal(a.begin(), a.begin() + 8, b.begin())) << "not even a shared prefix";
}

TEST(Sampler, ShardsAreEqualDisjointUpToPaddingAndCoverTheEpoch) {
  const int64_t n = 103;
  for (int world : {1, 2, 4, 5, 7}) {
    for (int64_t epoch : {0, 1, 5}) {
      std::map<int64_t, int> seen;
      std::vector<int64_t> combined;
      const int64_t per_rank = (n + world - 1) / world;
      for (int rank = 0; rank < world; ++rank) {
        DistributedSampler s(n, world, rank, 42);
        s.set_epoch(epoch);
        auto idx = s.indices();
        ASSERT_EQ(int64_t(idx.size()), per_rank) << world;
        ASSERT_EQ(s.num_samples(), per_rank);
        for (int64_t i : idx) {
          ASSERT_GE(i, 0);
          ASSERT_LT(i, n);
          ++seen[i];
        }
      }
      ASSERT_EQ(int64_t(seen.size()), n) << "every sample is seen, world " << world;
      int64_t extra = 0;
      for (auto [i, count] : seen) extra += count - 1;
      EXPECT_EQ(extra, per_rank * world - n) << "only the padding repeats, world " << world;
    }
  }
}

TEST(Sampler, RankTakesEveryWorldSizeThEntryOfThePaddedOrder) {
  const int64_t n = 10;
  const int world = 4;  // total 12: the permutation plus its first 2 entries again
  auto order = epoch_permutation(n, 3, 2);
  order.push_back(order[0]);
  order.push_back(order[1]);
  for (int rank = 0; rank < world; ++rank) {
    DistributedSampler s(n, world, rank, 3);
    s.set_epoch(2);
    auto idx = s.indices();
    ASSERT_EQ(idx.size(), 3u);
    for (size_t k = 0; k < idx.size(); ++k) EXPECT_EQ(idx[k], order[rank + k * world]);
  }
}

TEST(Sampler, OrderChangesWithEpochAndIsReproducible) {
  DistributedSampler a(500, 3, 1, 11), b(500, 3, 1, 11);
  a.set_epoch(4);
  b.set_epoch(4);
  EXPECT_EQ(a.indices(), b.indices());
  b.set_epoch(5);
  EXPECT_NE(a.indices(), b.indices());
  DistributedSampler other_seed(500, 3, 1, 12);
  other_seed.set_epoch(4);
  EXPECT_NE(a.indices(), other_seed.indices());
}

TEST(Sampler, NoShuffle) {
  DistributedSampler plain(10, 3, 1, 0, /*shuffle=*/false);
  EXPECT_EQ(plain.indices(), (std::vector<int64_t>{1, 4, 7, 0}));  // 10 wraps to index 0
}

TEST(Sampler, MoreRanksThanSamplesRepeatsTheList) {
  std::map<int64_t, int> seen;
  for (int rank = 0; rank < 8; ++rank) {
    auto idx = DistributedSampler(3, 8, rank, 1).indices();
    ASSERT_EQ(idx.size(), 1u);
    ++seen[idx[0]];
  }
  EXPECT_EQ(seen.size(), 3u);
}

TEST(Sampler, RejectsBadArguments) {
  EXPECT_THROW(DistributedSampler(10, 2, 2, 0), UsageError);
  EXPECT_THROW(DistributedSampler(10, 0, 0, 0), UsageError);
  EXPECT_THROW(DistributedSampler(0, 1, 0, 0), UsageError);
  EXPECT_THROW(eval_shard_indices(10, 2, -1), UsageError);
}

// A resumed epoch: the same world size drops each rank's first k x batch/W entries, padding
// included, so a same-world resume is the uninterrupted run's data bit for bit.
TEST(SamplerResume, SameWorldSizeDropsEachRanksConsumedPrefix) {
  for (int64_t n : {96, 103, 205}) {
    for (int world : {1, 2, 3, 4}) {
      const int64_t batch = 12, local = batch / world;
      const int64_t steps = (n + batch - 1) / batch;
      for (int rank = 0; rank < world; ++rank) {
        const DistributedSampler s(n, world, rank, 9);
        EXPECT_EQ(s.remaining_indices(2, 0), s.indices_for_epoch(2));
        const auto whole = s.indices_for_epoch(2);
        for (int64_t k = 1; k < steps; ++k) {
          const std::vector<int64_t> rest(whole.begin() + k * local, whole.end());
          ASSERT_EQ(s.remaining_indices(2, k * batch), rest) << n << " " << world << " " << k;
        }
      }
    }
  }
}

// k steps of a global batch B on `before` ranks, the rest of the epoch on `after` ranks: the
// steps taken consume exactly the order's first k*B positions, and with the rest every sample
// of the epoch is taken once, plus the padding that makes the rest a multiple of `after`
// (repeats from the order's start), each rank taking the same number of samples.
TEST(SamplerResume, RestReSplitsOverAnotherWorldSizeTakingEverySampleOnce) {
  const int64_t batch = 12;
  for (int64_t n : {96, 103, 205}) {
    const auto order = epoch_permutation(n, 5, 1);
    const int64_t steps = (n + batch - 1) / batch;
    for (int before : {1, 2, 3, 4}) {
      for (int after : {1, 2, 3, 4, 6}) {
        for (int64_t k = 1; k < steps; ++k) {
          std::map<int64_t, int> seen;
          std::multiset<int64_t> first_steps;
          for (int rank = 0; rank < before; ++rank) {
            const auto mine = DistributedSampler(n, before, rank, 5).indices_for_epoch(1);
            first_steps.insert(mine.begin(), mine.begin() + k * (batch / before));
          }
          ASSERT_EQ(first_steps, std::multiset<int64_t>(order.begin(), order.begin() + k * batch));
          for (int64_t i : first_steps) ++seen[i];
          const int64_t rest = n - k * batch;
          const int64_t per_rank = (rest + after - 1) / after;
          for (int rank = 0; rank < after; ++rank) {
            const auto mine = DistributedSampler(n, after, rank, 5).remaining_indices(1, k * batch);
            ASSERT_EQ(int64_t(mine.size()), per_rank);
            // The remaining steps: ceil(per_rank / (batch / after)) = steps - k on any world.
            ASSERT_EQ((per_rank + batch / after - 1) / (batch / after), steps - k);
            for (int64_t i : mine) ++seen[i];
          }
          ASSERT_EQ(int64_t(seen.size()), n) << "every sample of the epoch taken";
          const int64_t padding = per_rank * after - rest;
          std::multiset<int64_t> repeated;
          for (const auto& [index, count] : seen) {
            ASSERT_LE(count, 2);
            if (count == 2) repeated.insert(index);
          }
          ASSERT_EQ(repeated, std::multiset<int64_t>(order.begin(), order.begin() + padding))
              << n << " samples, " << before << " -> " << after << " ranks after " << k << " steps";
        }
      }
    }
  }
}

TEST(SamplerResume, RefusesAConsumedCountOutsideTheEpoch) {
  const DistributedSampler s(50, 2, 0, 1);
  EXPECT_THROW(s.remaining_indices(0, 50), UsageError);
  EXPECT_THROW(s.remaining_indices(0, -1), UsageError);
}

TEST(EvalShards, EverySampleExactlyOnce) {
  for (int64_t n : {1, 7, 103, 10000}) {
    for (int world : {1, 2, 3, 4, 8, 16}) {
      std::vector<int64_t> all;
      size_t smallest = SIZE_MAX, largest = 0;
      for (int rank = 0; rank < world; ++rank) {
        auto idx = eval_shard_indices(n, world, rank);
        smallest = std::min(smallest, idx.size());
        largest = std::max(largest, idx.size());
        all.insert(all.end(), idx.begin(), idx.end());
      }
      ASSERT_EQ(int64_t(all.size()), n) << n << " over " << world;
      for (int64_t i = 0; i < n; ++i) ASSERT_EQ(all[i], i);  // contiguous, in rank order
      EXPECT_LE(largest - smallest, 1u);
    }
  }
}

}  // namespace
}  // namespace dp::data
