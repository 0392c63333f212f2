// Augmentation on the backend (--augment-on device): Backend::augment_batch on the CPU backend
// reproduces the loader's host Augmenter bit for bit, and a DeviceBatch fed by a loader that
// defers augmentation hands the model exactly the images the host-augmenting loader does, in
// every batch of an epoch including the last partial one. (The CUDA kernel is held to the same
// Augmenter in tests/backend/test_cuda_vs_cpu.cpp.)
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

#include "../data/augment_reference.h"
#include "../data/data_fixtures.h"
#include "backend/backend.h"
#include "core/error.h"
#include "data/augment.h"
#include "data/distributed_sampler.h"
#include "data/sharded_loader.h"
#include "train/device_batch.h"

namespace dp {
namespace {

data::AugmentConfig augment_config(bool normalize, int padding) {
  data::AugmentConfig config;
  config.random_crop = padding > 0;
  config.crop_padding = padding;
  config.horizontal_flip = true;
  config.normalize = normalize;
  config.mean = {0.49, 0.48, 0.45};
  config.std = {0.25, 0.24, 0.26};
  config.seed = 7;
  return config;
}

TEST(BackendAugmentation, MatchesTheHostAugmenterBitForBit) {
  auto backend = make_cpu_backend(0);
  const int64_t n = 6, h = 7, w = 5, c = 3;
  std::mt19937 gen(3);
  Tensor images = Tensor::empty({n, h, w, c}, DType::u8);
  for (int64_t i = 0; i < images.numel(); ++i) images.data<uint8_t>()[i] = gen() & 0xff;
  for (bool normalize : {true, false})
    for (int padding : {0, 3, -2, -4}) {  // negative: reflect padding (--translate)
      SCOPED_TRACE(fmt::format("normalize {} padding {}", normalize, padding));
      data::AugmentConfig config = augment_config(normalize, std::abs(padding));
      config.reflect = padding < 0;
      padding = std::abs(padding);
      std::vector<data::SampleDraw> draws;
      for (int64_t b = 0; b < n; ++b) draws.push_back(data::draw_for_sample(config, 1, b));
      draws[0] = {0, 2 * padding, true};  // both corners of the crop range
      draws[1] = {2 * padding, 0, false};
      const data::testing::AugmentedOnHost host =
          data::testing::augment_on_host(config, images, draws);
      Tensor out;
      backend->augment_batch(augment_spec_for(config), images, host.crop_yx, host.flip, out);
      ASSERT_EQ(out.shape(), host.expected.shape());
      EXPECT_EQ(std::memcmp(out.data(), host.expected.data(), host.expected.bytes()), 0);
    }
}

TEST(BackendAugmentation, RejectsMismatchedOperands) {
  auto backend = make_cpu_backend(0);
  Tensor images = Tensor::zeros({2, 4, 4, 3}, DType::u8), crop = Tensor::zeros({2, 2}, DType::i32),
         flip = Tensor::zeros({2}, DType::u8), out;
  AugmentSpec spec = augment_spec_for(augment_config(true, 2));
  Tensor f32_images = Tensor::zeros({2, 4, 4, 3});
  EXPECT_THROW(backend->augment_batch(spec, f32_images, crop, flip, out), Error);
  Tensor short_crop = Tensor::zeros({1, 2}, DType::i32);
  EXPECT_THROW(backend->augment_batch(spec, images, short_crop, flip, out), Error);
  Tensor long_flip = Tensor::zeros({3}, DType::u8);
  EXPECT_THROW(backend->augment_batch(spec, images, crop, long_flip, out), Error);
  AugmentSpec two_channels = spec;
  two_channels.mean.pop_back();
  two_channels.std.pop_back();
  EXPECT_THROW(backend->augment_batch(two_channels, images, crop, flip, out), Error);
}

TEST(DeviceBatch, BackendAugmentationGivesTheLoadersImages) {
  data::testing::TempDir dir("dp_device_batch");
  const std::string file = dir / "s.h5";
  data::testing::write_synthetic_packed(file, 47, 11, 9, 8, 3);
  data::HDF5Dataset dataset(file, "train");
  data::DistributedSampler sampler(dataset.size(), 1, 0, 5);
  auto indices = [&](int64_t epoch) { return sampler.indices_for_epoch(epoch); };
  data::LoaderOptions host_options;
  host_options.batch_size = 10;  // 47 samples: 4 full batches and a partial one
  host_options.augment = augment_config(true, 2);
  host_options.augment.mean = dataset.mean();
  host_options.augment.std = dataset.std();
  data::LoaderOptions deferred_options = host_options;
  deferred_options.defer_augmentation = true;
  data::ShardedLoader host_loader(dataset, indices, host_options);
  data::ShardedLoader deferred_loader(dataset, indices, deferred_options);

  auto backend = make_cpu_backend(0);
  EXPECT_TRUE(augments_on_backend(AugmentOn::device, *backend));
  EXPECT_FALSE(
      augments_on_backend(AugmentOn::automatic, *backend));  // the CPU backend augments on the host
  EXPECT_FALSE(augments_on_backend(AugmentOn::host, *backend));
  DeviceBatch host_batch(*backend), backend_batch(*backend, augment_spec_for(host_options.augment));
  for (int64_t epoch = 0; epoch < 2; ++epoch) {
    host_loader.start_epoch(epoch);
    deferred_loader.start_epoch(epoch);
    int64_t batches = 0;
    while (const data::HostBatch* expected = host_loader.next()) {
      const data::HostBatch* deferred = deferred_loader.next();
      ASSERT_NE(deferred, nullptr);
      host_batch.upload(*expected);
      backend_batch.upload(*deferred);
      const Tensor& want = host_batch.images();
      const Tensor& got = backend_batch.images();
      ASSERT_EQ(got.shape(), want.shape()) << "batch " << batches;
      EXPECT_EQ(std::memcmp(got.data(), want.data(), want.bytes()), 0) << "batch " << batches;
      ASSERT_EQ(backend_batch.labels().shape(), host_batch.labels().shape());
      EXPECT_EQ(std::memcmp(backend_batch.labels().data<int32_t>(),
                            host_batch.labels().data<int32_t>(), host_batch.labels().bytes()),
                0);
      ++batches;
    }
    EXPECT_EQ(batches, 5);
    EXPECT_EQ(deferred_loader.next(), nullptr);
  }
}

}  // namespace
}  // namespace dp
