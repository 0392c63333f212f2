// ShardedLoader: the prefetched batches equal direct reads + augmentation, in order, across
// epochs; partial batches, early stops and reader errors behave.
#include <gtest/gtest.h>

#include <cstring>

#include "core/error.h"
#include "data/distributed_sampler.h"
#include "data/sharded_loader.h"
#include "data_fixtures.h"
#include "error_matchers.h"

namespace dp::data {
namespace {

using testing::TempDir;

class Loader : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir("dp_loader");
    testing::write_synthetic_packed(*dir_ / "s.h5", 103, 29, 8, 6, 3);
  }
  static void TearDownTestSuite() { delete dir_; }
  static std::string file() { return *dir_ / "s.h5"; }

  static LoaderOptions options(const HDF5Dataset& d, int64_t batch, int depth = 2) {
    LoaderOptions o;
    o.batch_size = batch;
    o.prefetch_depth = depth;
    o.augment.random_crop = true;
    o.augment.crop_padding = 2;
    o.augment.horizontal_flip = true;
    o.augment.mean = d.mean();
    o.augment.std = d.std();
    o.augment.seed = 99;
    return o;
  }

  // What a batch of `indices` must hold: direct read + per-sample augmentation.
  static void expect_batch(const HDF5Dataset& d, const LoaderOptions& o, int64_t epoch,
                           const std::vector<int64_t>& indices, const HostBatch& batch) {
    const int64_t s = d.sample_bytes();
    ASSERT_EQ(batch.size(), int64_t(indices.size()));
    ASSERT_EQ(batch.images.shape(), (Shape{int64_t(indices.size()), 8, 6, 3}));
    ASSERT_EQ(batch.labels.shape(), (Shape{int64_t(indices.size())}));
    ASSERT_EQ(batch.indices, indices);
    std::vector<uint8_t> raw(s);
    std::vector<float> expected(s);
    Augmenter aug(o.augment, d.height(), d.width(), d.channels());
    for (size_t b = 0; b < indices.size(); ++b) {
      d.read_images({indices[b]}, raw.data());
      aug.apply(raw.data(), draw_for_sample(o.augment, epoch, indices[b]), expected.data());
      for (int64_t k = 0; k < s; ++k)
        ASSERT_EQ(batch.images.data<float>()[b * s + k], expected[k]) << "sample " << b;
      ASSERT_EQ(batch.labels.data<int32_t>()[b], d.labels()[indices[b]]);
    }
  }
  static TempDir* dir_;
};
TempDir* Loader::dir_ = nullptr;

TEST_F(Loader, YieldsTheSamplerOrderAcrossEpochs) {
  HDF5Dataset d(file(), "train");
  DistributedSampler sampler(d.size(), 2, 1, 5);
  auto o = options(d, 10, 3);
  ShardedLoader loader(
      d, [&](int64_t e) { return sampler.indices_for_epoch(e); }, o);
  for (int64_t epoch = 0; epoch < 3; ++epoch) {
    loader.start_epoch(epoch);
    auto expected = sampler.indices_for_epoch(epoch);  // 52 samples: 5 full batches + 2
    EXPECT_EQ(loader.batches_in_epoch(), 6);
    EXPECT_EQ(loader.samples_in_epoch(), 52);
    int64_t k = 0;
    while (const HostBatch* batch = loader.next()) {
      EXPECT_EQ(batch->number, k);
      std::vector<int64_t> want(expected.begin() + k * 10,
                                expected.begin() + std::min<int64_t>(52, (k + 1) * 10));
      expect_batch(d, o, epoch, want, *batch);
      ++k;
    }
    EXPECT_EQ(k, 6);
    EXPECT_EQ(loader.next(), nullptr);  // stays at the end
    EXPECT_GE(loader.epoch_wait_seconds(), loader.last_wait_seconds());
    EXPECT_GE(loader.last_wait_seconds(), 0.0);
  }
}

// With augmentation deferred to the backend, a batch carries the stored pixels and each
// sample's draws (what Backend::augment_batch needs) and no host-augmented images.
TEST_F(Loader, DeferredAugmentationHandsOutRawPixelsAndDraws) {
  HDF5Dataset d(file(), "train");
  DistributedSampler sampler(d.size(), 2, 1, 5);
  auto o = options(d, 10, 3);
  o.defer_augmentation = true;
  ShardedLoader loader(
      d, [&](int64_t e) { return sampler.indices_for_epoch(e); }, o);
  const int64_t s = d.sample_bytes();
  std::vector<uint8_t> raw(s);
  int64_t mirrored = 0, shifted = 0;
  for (int64_t epoch = 0; epoch < 2; ++epoch) {
    loader.start_epoch(epoch);
    const std::vector<int64_t> expected = sampler.indices_for_epoch(epoch);
    int64_t seen = 0;
    while (const HostBatch* batch = loader.next()) {
      const int64_t n = batch->size();
      EXPECT_FALSE(batch->images.defined());
      ASSERT_EQ(batch->raw_images.shape(), (Shape{n, 8, 6, 3}));
      ASSERT_EQ(batch->crop_yx.shape(), (Shape{n, 2}));
      ASSERT_EQ(batch->flip.shape(), (Shape{n}));
      for (int64_t b = 0; b < n; ++b) {
        const int64_t index = expected[seen + b];
        ASSERT_EQ(batch->indices[b], index);
        d.read_images({index}, raw.data());
        ASSERT_EQ(std::memcmp(batch->raw_images.data<uint8_t>() + b * s, raw.data(), s), 0);
        const SampleDraw draw = draw_for_sample(o.augment, epoch, index);
        EXPECT_EQ(batch->crop_yx.data<int32_t>()[2 * b], draw.crop_y);
        EXPECT_EQ(batch->crop_yx.data<int32_t>()[2 * b + 1], draw.crop_x);
        EXPECT_EQ(batch->flip.data<uint8_t>()[b], draw.flip ? 1 : 0);
        EXPECT_EQ(batch->labels.data<int32_t>()[b], d.labels()[index]);
        mirrored += draw.flip;
        shifted += draw.crop_y != o.augment.crop_padding;
      }
      seen += n;
    }
    EXPECT_EQ(seen, 52);
  }
  EXPECT_GT(mirrored, 0);  // the draws are not all the identity
  EXPECT_GT(shifted, 0);
}

TEST_F(Loader, DropLastDropsThePartialBatch) {
  HDF5Dataset d(file(), "train");
  auto o = options(d, 10);
  o.drop_last = true;
  ShardedLoader loader(
      d, [&](int64_t) { return eval_shard_indices(d.size(), 1, 0); }, o);
  loader.start_epoch(0);
  int batches = 0;
  while (const HostBatch* b = loader.next()) {
    EXPECT_EQ(b->size(), 10);
    ++batches;
  }
  EXPECT_EQ(batches, 10);
}

TEST_F(Loader, EvalShardsWithoutAugmentation) {
  HDF5Dataset d(file(), "test");
  auto o = options(d, 8);
  o.augment.random_crop = o.augment.horizontal_flip = false;
  int64_t total = 0;
  for (int rank = 0; rank < 3; ++rank) {
    auto shard = eval_shard_indices(d.size(), 3, rank);
    ShardedLoader loader(
        d, [&](int64_t) { return shard; }, o);
    loader.start_epoch(0);
    int64_t at = 0;
    while (const HostBatch* b = loader.next()) {
      std::vector<int64_t> want(shard.begin() + at, shard.begin() + at + b->size());
      expect_batch(d, o, 0, want, *b);
      at += b->size();
    }
    EXPECT_EQ(at, int64_t(shard.size()));
    total += at;
  }
  EXPECT_EQ(total, 29);
}

TEST_F(Loader, SameSamplesWhateverTheBatchingAndDepth) {
  HDF5Dataset d(file(), "train");
  auto indices = epoch_permutation(d.size(), 1, 0);
  auto collect = [&](int64_t batch, int depth) {
    ShardedLoader loader(
        d, [&](int64_t) { return indices; }, options(d, batch, depth));
    loader.start_epoch(2);
    std::vector<float> all;
    while (const HostBatch* b = loader.next())
      all.insert(all.end(), b->images.data<float>(), b->images.data<float>() + b->images.numel());
    return all;
  };
  auto reference = collect(103, 2);
  EXPECT_EQ(collect(7, 2), reference);
  EXPECT_EQ(collect(1, 5), reference);
}

TEST_F(Loader, EarlyStopAndRestartDoNotHang) {
  HDF5Dataset d(file(), "train");
  for (int trial = 0; trial < 20; ++trial) {
    ShardedLoader loader(
        d, [&](int64_t e) { return epoch_permutation(d.size(), 0, e); }, options(d, 4, 2));
    loader.start_epoch(0);
    ASSERT_NE(loader.next(), nullptr);
    loader.start_epoch(1);  // abandons epoch 0 while the producer waits for a free slot
    const HostBatch* b = loader.next();
    ASSERT_NE(b, nullptr);
    EXPECT_EQ(b->indices[0], epoch_permutation(d.size(), 0, 1)[0]);
    // Destroyed here with batches pending.
  }
}

TEST_F(Loader, RethrowsReaderErrorsAfterTheGoodBatches) {
  HDF5Dataset d(file(), "train");
  std::vector<int64_t> indices = {0, 1, 2, 3, 4, 500, 6};  // second batch holds a bad index
  ShardedLoader loader(
      d, [&](int64_t) { return indices; }, options(d, 4));
  loader.start_epoch(0);
  ASSERT_NE(loader.next(), nullptr);
  EXPECT_THROW_WITH(loader.next(), DataError, "sample index 500 out of range");
  EXPECT_THROW(loader.next(), DataError);  // stays failed until the next epoch
  indices = {5, 6};
  loader.start_epoch(1);
  const HostBatch* b = loader.next();
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->size(), 2);
}

TEST_F(Loader, RejectsBadOptionsAndUseBeforeStart) {
  HDF5Dataset d(file(), "train");
  auto o = options(d, 4, 1);
  EXPECT_THROW(ShardedLoader(
                   d, [](int64_t) { return std::vector<int64_t>{}; }, o),
               UsageError);
  o = options(d, 0);
  EXPECT_THROW(ShardedLoader(
                   d, [](int64_t) { return std::vector<int64_t>{}; }, o),
               UsageError);
  ShardedLoader loader(
      d, [](int64_t) { return std::vector<int64_t>{}; }, options(d, 4));
  EXPECT_THROW(loader.next(), UsageError);
  loader.start_epoch(0);
  EXPECT_EQ(loader.next(), nullptr);  // an empty shard is an empty epoch
}

}  // namespace
}  // namespace dp::data
