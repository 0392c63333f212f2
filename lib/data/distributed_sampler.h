// Which samples each rank sees in an epoch, as a pure function of (dataset size, world size,
// rank, seed, epoch) — PyTorch DistributedSampler semantics, so N ranks x batch B/N see what
// one rank x batch B sees. The permutation generator is specified here (std::mt19937_64 and
// our own Fisher-Yates), not std::shuffle, whose algorithm differs between standard libraries.
// It is not bit-identical to torch.randperm; only the semantics match.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

namespace dp::data {

// Uniform integer in [0, bound) by rejection sampling on 64-bit draws (no modulo bias and,
// unlike std::uniform_int_distribution, the same on every standard library).
uint64_t uniform_below(std::mt19937_64& rng, uint64_t bound);

// A permutation of [0, n): mt19937_64 seeded with hash::derive_seed(seed, "sampler", epoch),
// Fisher-Yates from the back (for i = n-1 .. 1: swap(p[i], p[uniform_below(i + 1)])).
// PyTorch's DistributedSampler seeds with seed + epoch, so its seed s, epoch e+1 repeats seed
// s+1, epoch e; ours gives every (seed, epoch) its own order.
std::vector<int64_t> epoch_permutation(int64_t n, uint64_t seed, int64_t epoch);

// The version of epoch_permutation's order: checkpoints record it, and a resume refuses a
// checkpoint written under another order (1: seed + epoch; 2: derive_seed).
inline constexpr int64_t kSamplerOrderVersion = 2;

class DistributedSampler {
 public:
  // Throws UsageError for world_size < 1, rank outside [0, world_size) or an empty dataset.
  // DistributedSampler's drop_last (each rank's shard truncated to floor(N / W)) is not
  // offered: --drop-last is DataLoader's, dropping each rank's last partial batch (the loader's
  // batches_for).
  DistributedSampler(int64_t dataset_size, int world_size, int rank, uint64_t seed = 0,
                     bool shuffle = true);

  void set_epoch(int64_t epoch) { epoch_ = epoch; }
  int64_t epoch() const { return epoch_; }
  // Samples per rank per epoch: ceil(N / W).
  int64_t num_samples() const { return num_samples_; }
  int64_t total_size() const { return num_samples_ * world_size_; }

  // This rank's indices for the current epoch: the (shuffled) order, padded by wrapping
  // around to total_size(), then every world_size-th entry
  // starting at rank.
  std::vector<int64_t> indices() const { return indices_for_epoch(epoch_); }
  std::vector<int64_t> indices_for_epoch(int64_t epoch) const { return remaining_indices(epoch, 0); }

  // The rest of an epoch whose first `consumed` positions of the order were taken (a resumed
  // epoch, possibly taken on another number of ranks): positions [consumed, dataset size) of
  // the order, padded by wrapping around to the order's start up to a multiple of world_size
  // more, and rank r takes positions consumed + r, consumed + r + world_size, ...
  // With a global batch B divisible by world_size, k steps of any number of ranks consume the
  // positions [0, k*B) exactly; so the rest of the epoch re-splits over this world size, each
  // remaining sample taken once (plus the padding's repeats). With consumed = k*B and the
  // same world size this is indices_for_epoch(epoch) without the rank's first k*B/world_size
  // entries, padding included. Throws UsageError unless 0 <= consumed < dataset size.
  std::vector<int64_t> remaining_indices(int64_t epoch, int64_t consumed) const;

 private:
  int64_t dataset_size_;
  int world_size_, rank_;
  uint64_t seed_;
  bool shuffle_;
  int64_t num_samples_;
  int64_t epoch_ = 0;
};

// Evaluation sharding: rank r gets the contiguous slice [r*N/W, (r+1)*N/W) — no padding, so
// across ranks every sample is evaluated exactly once (slices differ in length by at most 1).
std::vector<int64_t> eval_shard_indices(int64_t dataset_size, int world_size, int rank);

}  // namespace dp::data
