#include "data/distributed_sampler.h"

#include <limits>
#include <numeric>

#include "core/error.h"
#include "core/hash.h"

namespace dp::data {
namespace {

void check_rank(int world_size, int rank) {
  if (world_size < 1 || rank < 0 || rank >= world_size)
    throw UsageError(
        fmt::format("sampler: rank {} is not in [0, world size {})", rank, world_size));
}

}  // namespace

uint64_t uniform_below(std::mt19937_64& rng, uint64_t bound) {
  DP_CHECK(bound > 0, "empty range");
  // Accept draws below the largest multiple of bound; the rest would bias small values.
  const uint64_t limit =
      std::numeric_limits<uint64_t>::max() - std::numeric_limits<uint64_t>::max() % bound;
  uint64_t draw;
  do draw = rng();
  while (draw >= limit);
  return draw % bound;
}

std::vector<int64_t> epoch_permutation(int64_t n, uint64_t seed, int64_t epoch) {
  std::vector<int64_t> p(n);
  std::iota(p.begin(), p.end(), 0);
  std::mt19937_64 rng(hash::derive_seed(seed, "sampler", static_cast<uint64_t>(epoch)));
  for (int64_t i = n - 1; i > 0; --i) std::swap(p[i], p[uniform_below(rng, i + 1)]);
  return p;
}

DistributedSampler::DistributedSampler(int64_t dataset_size, int world_size, int rank,
                                       uint64_t seed, bool shuffle)
    : dataset_size_(dataset_size),
      world_size_(world_size),
      rank_(rank),
      seed_(seed),
      shuffle_(shuffle) {
  check_rank(world_size, rank);
  if (dataset_size <= 0) throw UsageError("sampler: the dataset is empty");
  num_samples_ = (dataset_size + world_size - 1) / world_size;
}

std::vector<int64_t> DistributedSampler::remaining_indices(int64_t epoch, int64_t consumed) const {
  if (consumed != 0 && (consumed < 0 || consumed >= dataset_size_))
    throw UsageError(fmt::format("sampler: cannot resume an epoch of {} samples after {}",
                                 dataset_size_, consumed));
  std::vector<int64_t> order;
  if (shuffle_) {
    order = epoch_permutation(dataset_size_, seed_, epoch);
  } else {
    order.resize(dataset_size_);
    std::iota(order.begin(), order.end(), 0);
  }
  // consumed + a multiple of world_size covering the rest (total_size() when consumed is 0),
  // so every rank takes the same number of samples.
  const int64_t rest = dataset_size_ - consumed;
  const int64_t total = consumed + (rest + world_size_ - 1) / world_size_ * world_size_;
  // Pad by wrapping around (repeating the list when the padding exceeds it, as PyTorch does).
  for (int64_t i = dataset_size_; i < total; ++i) order.push_back(order[i - dataset_size_]);
  order.resize(total);
  std::vector<int64_t> mine;
  mine.reserve((total - consumed) / world_size_);
  for (int64_t i = consumed + rank_; i < total; i += world_size_) mine.push_back(order[i]);
  return mine;
}

std::vector<int64_t> eval_shard_indices(int64_t dataset_size, int world_size, int rank) {
  check_rank(world_size, rank);
  const int64_t begin = dataset_size * rank / world_size;
  const int64_t end = dataset_size * (rank + 1) / world_size;
  std::vector<int64_t> mine(end - begin);
  std::iota(mine.begin(), mine.end(), begin);
  return mine;
}

}  // namespace dp::data
