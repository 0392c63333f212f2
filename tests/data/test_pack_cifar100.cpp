// `dptrain pack --format cifar100`: every byte of official-size random CIFAR-100 files lands
// channels-last with its fine or coarse label; malformed files fail naming the file.
#include <gtest/gtest.h>

#include <fstream>

#include "core/error.h"
#include "data/hdf5_dataset.h"
#include "data/packer.h"
#include "data/sha256.h"
#include "data_fixtures.h"
#include "error_matchers.h"
#include "io/hdf5.h"

namespace dp::data {
namespace {

using testing::TempDir;
namespace fs = std::filesystem;

constexpr int64_t kRecord = 3074;

std::vector<uint8_t> cifar100_bytes(int64_t records, uint64_t seed) {
  std::vector<uint8_t> bytes = testing::random_bytes(size_t(records * kRecord), seed);
  std::mt19937_64 rng(seed ^ 0x5a5a);
  for (int64_t r = 0; r < records; ++r) {
    bytes[r * kRecord] = uint8_t(rng() % 20);
    bytes[r * kRecord + 1] = uint8_t(rng() % 100);
  }
  return bytes;
}

void write_names(const std::string& path, const std::string& stem, int n) {
  std::ofstream out(path);
  for (int i = 0; i < n; ++i) out << stem << i << "\n";
  out << "\n";
}

class Cifar100Pack : public ::testing::Test {
 protected:
  // Official-size files (50000 + 10000 records, 184 MB), written once for the suite.
  static void SetUpTestSuite() {
    dir_ = new TempDir("dp_cifar100");
    write_names(*dir_ / "fine_label_names.txt", "fine", 100);
    write_names(*dir_ / "coarse_label_names.txt", "coarse", 20);
    testing::write_file(*dir_ / "train.bin", cifar100_bytes(50000, 7));
    testing::write_file(*dir_ / "test.bin", cifar100_bytes(10000, 8));
  }
  static void TearDownTestSuite() { delete dir_; }
  static TempDir* dir_;

  void check(const std::string& labels, int label_byte, int classes) {
    TempDir out;
    PackOptions options{labels == "fine" ? PackFormat::automatic : PackFormat::cifar100,
                        dir_->path().string(), out / "c100.h5"};
    options.labels = parse_enum_option<Cifar100Labels>("labels", labels);
    const PackSummary summary = pack_dataset(options);
    EXPECT_EQ(summary.format, PackFormat::cifar100);
    EXPECT_EQ(summary.train_count, 50000);
    EXPECT_EQ(summary.test_count, 10000);
    h5::File file(options.output_file, h5::File::Mode::read);
    EXPECT_EQ(file.int_attribute("num_classes"), classes);
    const auto names = file.dataset("class_names").read_strings();
    ASSERT_EQ(names.size(), size_t(classes));
    EXPECT_EQ(names[classes - 1], (labels == "fine" ? "fine" : "coarse") + std::to_string(classes - 1));
    for (const char* split : {"train", "test"}) {
      const auto bytes = testing::read_file(*dir_ / (std::string(split) + ".bin"));
      std::vector<uint8_t> images, packed_labels;
      file.dataset(std::string(split) + "/images").read(images);
      file.dataset(std::string(split) + "/labels").read(packed_labels);
      const int64_t n = int64_t(bytes.size()) / kRecord;
      ASSERT_EQ(int64_t(packed_labels.size()), n);
      for (int64_t r = 0; r < n; ++r) {
        const uint8_t* rec = bytes.data() + r * kRecord;
        ASSERT_EQ(packed_labels[r], rec[label_byte]) << split << " record " << r;
        for (int p = 0; p < 1024; ++p)
          for (int c = 0; c < 3; ++c)
            ASSERT_EQ(images[(r * 1024 + p) * 3 + c], rec[2 + c * 1024 + p])
                << split << " record " << r << " pixel " << p << " channel " << c;
      }
    }
    auto sources = file.strings_attribute("sources");
    ASSERT_EQ(sources.size(), 3u);
    EXPECT_EQ(sources[1], "train.bin " + sha256_file(*dir_ / "train.bin"));
    HDF5Dataset reader(options.output_file, "train");  // the reader takes it
    EXPECT_EQ(reader.size(), 50000);
  }
};
TempDir* Cifar100Pack::dir_ = nullptr;

TEST_F(Cifar100Pack, FineLabelsAndEveryByte) { check("fine", 1, 100); }
TEST_F(Cifar100Pack, CoarseLabels) { check("coarse", 0, 20); }

class Cifar100Errors : public ::testing::Test {
 protected:
  void SetUp() override {
    write_names(dir / "fine_label_names.txt", "f", 100);
    write_names(dir / "coarse_label_names.txt", "c", 20);
    testing::write_file(dir / "test.bin", cifar100_bytes(10000, 2));
  }
  template <typename E = DataError>
  void expect_failure(const std::string& a, const std::string& b, const std::string& labels = "fine") {
    PackOptions options{PackFormat::cifar100, dir.path().string(), out / "x.h5"};
    const std::string message = testing::message_of<E>([&] {
      options.labels = parse_enum_option<Cifar100Labels>("labels", labels);  // as the CLI does
      pack_dataset(options);
    });
    EXPECT_NE(message.find(a), std::string::npos) << message;
    EXPECT_NE(message.find(b), std::string::npos) << message;
    EXPECT_FALSE(fs::exists(options.output_file));
    EXPECT_FALSE(fs::exists(options.output_file + ".tmp"));
  }
  TempDir dir{"dp_cifar100_bad"}, out;
};

TEST_F(Cifar100Errors, MissingTrainFile) { expect_failure("train.bin", "not found"); }

TEST_F(Cifar100Errors, TruncatedFile) {
  auto bytes = cifar100_bytes(50000, 1);
  bytes.resize(bytes.size() - 10);
  testing::write_file(dir / "train.bin", bytes);
  expect_failure("train.bin", "not a multiple of the 3074-byte record");
}

TEST_F(Cifar100Errors, FineLabelOutOfRange) {
  auto bytes = cifar100_bytes(50000, 1);
  bytes[777 * kRecord + 1] = 100;
  testing::write_file(dir / "train.bin", bytes);
  expect_failure("train.bin", "record 777 has coarse label");
}

TEST_F(Cifar100Errors, WrongNameCount) {
  testing::write_file(dir / "train.bin", cifar100_bytes(50000, 1));
  write_names(dir / "coarse_label_names.txt", "c", 19);
  expect_failure("coarse_label_names.txt", "holds 19 label names", "coarse");
}

TEST_F(Cifar100Errors, UnknownLabelKind) {
  testing::write_file(dir / "train.bin", cifar100_bytes(50000, 1));
  expect_failure<UsageError>("--labels", "medium", "medium");
}

}  // namespace
}  // namespace dp::data
