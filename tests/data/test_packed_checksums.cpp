// Packed datasets carry a checksum per chunk (one image row per chunk, labels in 4096-row
// chunks): a flipped byte in a row's pixels fails the read of that row, naming the file and
// dataset, while other rows still read; a flipped label byte fails opening the split; files
// packed before checksums still open, unverified.
#include <gtest/gtest.h>

#include <random>

#include "../io/flip_bytes.h"
#include "core/error.h"
#include "data/hdf5_dataset.h"
#include "data_fixtures.h"
#include "error_matchers.h"
#include "io/file_verify.h"

namespace dp::data {
namespace {

constexpr int kFlips = 40;

class PackedChecksums : public ::testing::Test {
 protected:
  void SetUp() override { testing::write_synthetic_packed(path, 70, 20, 4, 5, 3); }
  testing::TempDir dir;
  std::string path = dir / "synthetic.h5";
  std::string bad = dir / "bad.h5";
};

TEST_F(PackedChecksums, EveryDatasetOfANewFileIsChecksummed) {
  const FileVerification v = verify_file(path);
  EXPECT_TRUE(v.verified()) << v.problem;
  EXPECT_EQ(v.datasets, 5);  // class_names, {train,test}/{images,labels}
}

TEST_F(PackedChecksums, AFlippedImageByteFailsTheReadOfThatRowOnly) {
  for (const std::string split : {"train", "test"}) {
    for (int seed = 0; seed < kFlips / 2; ++seed) {
      std::mt19937_64 rng(seed);
      const auto chunk = dp::testing::copy_with_payload_flip(path, "/" + split + "/images", rng, bad);
      HDF5Dataset d(bad, split);  // opening reads labels and metadata only: still fine
      const int64_t row = static_cast<int64_t>(chunk.first_row);
      std::vector<uint8_t> out(2 * d.sample_bytes());
      const std::string message =
          testing::message_of<DataError>([&] { d.read_images({row}, out.data()); });
      EXPECT_NE(message.find(bad + ":/" + split + "/images: checksum mismatch"), std::string::npos)
          << message;
      const int64_t other = row == 0 ? 1 : row - 1;
      EXPECT_NO_THROW(d.read_images({other}, out.data()));
      const FileVerification v = verify_file(bad);
      EXPECT_FALSE(v.ok);
      EXPECT_EQ(v.failed_object, "/" + split + "/images");
    }
  }
}

TEST_F(PackedChecksums, AFlippedLabelByteFailsOpeningTheSplit) {
  for (const std::string split : {"train", "test"}) {
    for (int seed = 0; seed < kFlips / 2; ++seed) {
      std::mt19937_64 rng(seed + 1000);
      dp::testing::copy_with_payload_flip(path, "/" + split + "/labels", rng, bad);
      const std::string message =
          testing::message_of<DataError>([&] { HDF5Dataset d(bad, split); });
      EXPECT_NE(message.find(bad + ":/" + split + "/labels: checksum mismatch"), std::string::npos)
          << message;
      EXPECT_EQ(verify_file(bad).failed_object, "/" + split + "/labels");
    }
  }
}

TEST_F(PackedChecksums, FilesPackedBeforeChecksumsStillOpenUnverified) {
  const std::string old = dir / "old.h5";
  testing::write_synthetic_packed(old, 70, 20, 4, 5, 3, 5, h5::Checksum::none);
  HDF5Dataset d(old, "train"), fresh(path, "train");
  std::vector<uint8_t> a(3 * d.sample_bytes()), b(a.size());
  d.read_images({5, 69, 0}, a.data());
  fresh.read_images({5, 69, 0}, b.data());
  EXPECT_EQ(a, b);
  EXPECT_EQ(d.labels(), fresh.labels());
  const FileVerification v = verify_file(old);
  EXPECT_TRUE(v.ok) << v.problem;
  EXPECT_EQ(v.checksummed, 0);
}

}  // namespace
}  // namespace dp::data
