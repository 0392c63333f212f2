// Packs the real Fashion-MNIST (gz files in /usr/share/datasets/fashion-mnist) and checks the
// well-known facts: 60000/10000 images of 28x28, 6000 (train) and 1000 (test) per class.
#include <gtest/gtest.h>

#include <filesystem>

#include "data/hdf5_dataset.h"
#include "data/packer.h"
#include "data_fixtures.h"

namespace dp::data {
namespace {

const char* kSource = "/usr/share/datasets/fashion-mnist";

TEST(FashionMnist, PacksTheRealFiles) {
  if (!std::filesystem::exists(std::string(kSource) + "/train-images-idx3-ubyte.gz"))
    GTEST_SKIP() << kSource << " not present";
  testing::TempDir out;
  PackSummary s = pack_dataset({PackFormat::automatic, kSource, out / "fashion-mnist.h5"});
  std::printf("[ info ] packed Fashion-MNIST in %.2f s\n", s.seconds);
  EXPECT_EQ(s.format, PackFormat::fashion_mnist);
  EXPECT_EQ(s.train_count, 60000);
  EXPECT_EQ(s.test_count, 10000);
  EXPECT_EQ(s.height, 28);
  EXPECT_EQ(s.width, 28);
  EXPECT_EQ(s.channels, 1);
  // The commonly quoted normalisation constants of Fashion-MNIST's training set.
  EXPECT_NEAR(s.mean[0], 0.2860, 5e-4);
  EXPECT_NEAR(s.std[0], 0.3530, 5e-4);

  HDF5Dataset train(out / "fashion-mnist.h5", "train"), test(out / "fashion-mnist.h5", "test");
  EXPECT_EQ(train.class_names()[0], "T-shirt/top");
  EXPECT_EQ(train.class_names()[9], "Ankle boot");
  std::vector<int> train_counts(10), test_counts(10);
  for (uint8_t l : train.labels()) ++train_counts[l];
  for (uint8_t l : test.labels()) ++test_counts[l];
  for (int c = 0; c < 10; ++c) {
    EXPECT_EQ(train_counts[c], 6000) << c;
    EXPECT_EQ(test_counts[c], 1000) << c;
  }
  // The first training labels of the official file: ankle boot, t-shirt, t-shirt, dress, ...
  const std::vector<uint8_t> first = {9, 0, 0, 3, 0, 2, 7, 2, 5, 5};
  EXPECT_EQ(std::vector<uint8_t>(train.labels().begin(), train.labels().begin() + 10), first);
}

}  // namespace
}  // namespace dp::data
