// Packers: every byte of small CIFAR-10 / IDX inputs must land in the HDF5 layout of
// data/packed_format.h; malformed inputs must fail with a DataError naming the file.
#include <gtest/gtest.h>

#include <array>
#include <chrono>
#include <cmath>
#include <map>
#include <thread>

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

// Per-channel mean / population std of (N*H*W, C) uint8 pixels scaled to [0, 1], from a
// histogram of byte values (two passes over 256 bins, so rounding stays far below 1e-12 even
// for 50000 images; the packer uses integer sums instead).
void reference_mean_std(const std::vector<uint8_t>& hwc, int64_t channels,
                        std::vector<double>& mean, std::vector<double>& std) {
  std::vector<std::array<uint64_t, 256>> histogram(channels);
  for (auto& h : histogram) h.fill(0);
  for (size_t i = 0; i < hwc.size(); ++i) ++histogram[i % channels][hwc[i]];
  const double pixels = double(hwc.size() / channels);
  mean.assign(channels, 0);
  std.assign(channels, 0);
  for (int64_t c = 0; c < channels; ++c) {
    for (int v = 0; v < 256; ++v) mean[c] += histogram[c][v] * (v / 255.0);
    mean[c] /= pixels;
    for (int v = 0; v < 256; ++v) {
      const double d = v / 255.0 - mean[c];
      std[c] += histogram[c][v] * d * d;
    }
    std[c] = std::sqrt(std[c] / pixels);
  }
}

void expect_sources(const h5::File& file, const std::map<std::string, std::string>& expected) {
  auto sources = file.strings_attribute("sources");
  ASSERT_EQ(sources.size(), expected.size());
  for (const auto& entry : sources) {
    auto space = entry.find(' ');
    ASSERT_NE(space, std::string::npos) << entry;
    auto it = expected.find(entry.substr(0, space));
    ASSERT_NE(it, expected.end()) << entry;
    EXPECT_EQ(entry.substr(space + 1), it->second) << entry;
  }
}

// ---------------------------------------------------------------- CIFAR-10

class CifarPack : public ::testing::Test {
 protected:
  // Six official-size random batch files (184 MB), written once for the suite.
  static void SetUpTestSuite() {
    dir_ = new TempDir("dp_cifar");
    testing::write_cifar_meta(dir_->path().string());
    uint64_t seed = 100;
    for (const auto& name : testing::cifar_batch_names()) {
      auto bytes = testing::cifar_batch_bytes(seed++);
      testing::write_file(*dir_ / name, bytes);
    }
  }
  static void TearDownTestSuite() { delete dir_; }
  static TempDir* dir_;
};
TempDir* CifarPack::dir_ = nullptr;

TEST_F(CifarPack, EveryByteLandsChannelsLast) {
  TempDir out;
  PackOptions options{PackFormat::automatic, dir_->path().string(), out / "sub/cifar10.h5"};
  PackSummary summary = pack_dataset(options);
  EXPECT_EQ(summary.format, PackFormat::cifar10);
  EXPECT_EQ(summary.train_count, 50000);
  EXPECT_EQ(summary.test_count, 10000);
  EXPECT_FALSE(fs::exists(options.output_file + ".tmp"));
  std::printf("[ info ] packed 60000 CIFAR-10-sized records in %.2f s\n", summary.seconds);

  h5::File file(options.output_file, h5::File::Mode::read);
  EXPECT_EQ(file.string_attribute("format"), "dptrain-dataset");
  EXPECT_EQ(file.int_attribute("format_version"), 1);
  EXPECT_EQ(file.string_attribute("name"), "cifar10");
  EXPECT_EQ(file.int_attribute("num_classes"), 10);
  EXPECT_EQ(file.int_attribute("height"), 32);
  EXPECT_EQ(file.int_attribute("width"), 32);
  EXPECT_EQ(file.int_attribute("channels"), 3);
  EXPECT_EQ(file.dataset("class_names").read_strings(), testing::cifar_class_names());

  std::map<std::string, std::string> expected_sources;
  expected_sources["batches.meta.txt"] = sha256_file(*dir_ / "batches.meta.txt");
  std::vector<uint8_t> train_hwc;
  for (const auto& [split, names] :
       {std::pair<std::string, std::vector<std::string>>{
            "train",
            {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin",
             "data_batch_5.bin"}},
        {"test", {"test_batch.bin"}}}) {
    std::vector<uint8_t> images, labels;
    file.dataset(split + "/images").read(images);
    file.dataset(split + "/labels").read(labels);
    auto dims = file.dataset(split + "/images").dims();
    ASSERT_EQ(dims, (std::vector<hsize_t>{names.size() * 10000, 32, 32, 3}));
    int64_t record = 0;
    for (const auto& name : names) {
      auto bytes = testing::read_file(*dir_ / name);
      expected_sources[name] = sha256_hex(bytes.data(), bytes.size());
      for (int64_t r = 0; r < 10000; ++r, ++record) {
        const uint8_t* rec = bytes.data() + r * 3073;
        ASSERT_EQ(labels[record], rec[0]) << name << " record " << r;
        for (int y = 0; y < 32; ++y)
          for (int x = 0; x < 32; ++x)
            for (int c = 0; c < 3; ++c)
              ASSERT_EQ(images[((record * 32 + y) * 32 + x) * 3 + c],
                        rec[1 + c * 1024 + y * 32 + x])
                  << name << " record " << r << " y " << y << " x " << x << " c " << c;
      }
    }
    if (split == "train") train_hwc = std::move(images);
  }
  expect_sources(file, expected_sources);

  std::vector<double> mean, std;
  reference_mean_std(train_hwc, 3, mean, std);
  for (const auto* owner : {static_cast<const h5::Object*>(&file)}) {
    auto m = owner->doubles_attribute("mean"), s = owner->doubles_attribute("std");
    for (int c = 0; c < 3; ++c) {
      EXPECT_NEAR(m[c], mean[c], 1e-12);
      EXPECT_NEAR(s[c], std[c], 1e-12);
    }
  }
  for (const char* split : {"train", "test"}) {
    auto m = file.group(split).doubles_attribute("mean");
    auto s = file.group(split).doubles_attribute("std");
    for (int c = 0; c < 3; ++c) {
      EXPECT_NEAR(m[c], mean[c], 1e-12) << split;
      EXPECT_NEAR(s[c], std[c], 1e-12) << split;
    }
  }
  // The reader accepts what the packer wrote.
  HDF5Dataset test_split(options.output_file, "test");
  EXPECT_EQ(test_split.size(), 10000);
  EXPECT_EQ(test_split.class_names(), testing::cifar_class_names());
}

class CifarErrors : public ::testing::Test {
 protected:
  void SetUp() override { testing::write_cifar_meta(dir.path().string()); }
  void expect_failure(const std::string& substring_a, const std::string& substring_b) {
    PackOptions options{PackFormat::cifar10, dir.path().string(), out / "x.h5"};
    std::string message = testing::message_of<DataError>([&] { pack_dataset(options); });
    EXPECT_NE(message.find(substring_a), std::string::npos) << message;
    EXPECT_NE(message.find(substring_b), std::string::npos) << message;
    EXPECT_FALSE(fs::exists(options.output_file));
    EXPECT_FALSE(fs::exists(options.output_file + ".tmp"));
  }
  TempDir dir{"dp_cifar_bad"}, out;
};

TEST_F(CifarErrors, MissingBatchFile) { expect_failure("data_batch_1.bin", "not found"); }

TEST_F(CifarErrors, MissingMetaFile) {
  fs::remove(dir / "batches.meta.txt");
  expect_failure("batches.meta.txt", "not found");
}

TEST_F(CifarErrors, TruncatedBatch) {
  auto bytes = testing::cifar_batch_bytes(1);
  bytes.resize(bytes.size() - 100);
  testing::write_file(dir / "data_batch_1.bin", bytes);
  expect_failure("data_batch_1.bin", "not a multiple of the 3073-byte record");
}

TEST_F(CifarErrors, ShortBatchOfWholeRecords) {
  auto bytes = testing::cifar_batch_bytes(1);
  bytes.resize(3073 * 9999);
  testing::write_file(dir / "data_batch_1.bin", bytes);
  expect_failure("data_batch_1.bin", "holds 9999 records");
}

TEST_F(CifarErrors, LabelOutOfRangeNamesRecord) {
  auto bytes = testing::cifar_batch_bytes(1);
  bytes[1234 * 3073] = 10;
  testing::write_file(dir / "data_batch_1.bin", bytes);
  expect_failure("data_batch_1.bin", "record 1234 has label 10");
}

TEST_F(CifarErrors, WrongNumberOfClassNames) {
  std::ofstream(dir / "batches.meta.txt") << "cat\ndog\n";
  expect_failure("batches.meta.txt", "holds 2 class names");
}

TEST_F(CifarErrors, AClassNameTwice) {
  std::ofstream(dir / "batches.meta.txt")
      << "airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\ncat\ntruck\n";
  expect_failure("batches.meta.txt", "the class name 'cat' is there twice (names 4 and 9)");
}

// Class names are stored as UTF-8 text and printed one per line: Latin-1 bytes and a tab inside
// a name are refused, as in a folder's class names.
TEST_F(CifarErrors, AClassNameNotUtf8OrWithAControlCharacter) {
  for (const std::string bad : {"tr\xfc" "ck", "fire\ttruck"}) {
    std::ofstream(dir / "batches.meta.txt")
        << "airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\n" << bad << "\n";
    expect_failure("batches.meta.txt", "is not UTF-8 without control characters");
  }
}

// ---------------------------------------------------------------- IDX

void check_idx_pack(const testing::IdxDirSpec& spec, PackFormat format,
                    const std::vector<std::string>& classes) {
  TempDir src, out;
  auto [train, test] = testing::write_idx_dir(src.path().string(), spec);
  PackSummary summary = pack_dataset({format, src.path().string(), out / "p.h5"});
  EXPECT_EQ(summary.format, format);
  EXPECT_EQ(summary.train_count, spec.train);
  EXPECT_EQ(summary.test_count, spec.test);
  h5::File file(out / "p.h5", h5::File::Mode::read);
  EXPECT_EQ(file.string_attribute("name"), enum_name(format));
  EXPECT_EQ(file.int_attribute("height"), spec.rows);
  EXPECT_EQ(file.int_attribute("width"), spec.cols);
  EXPECT_EQ(file.int_attribute("channels"), 1);
  EXPECT_EQ(file.dataset("class_names").read_strings(), classes);
  for (const auto& [split, data, n] :
       {std::tuple{"train", &train, spec.train}, std::tuple{"test", &test, spec.test}}) {
    std::vector<uint8_t> images, labels;
    file.dataset(std::string(split) + "/images").read(images);
    file.dataset(std::string(split) + "/labels").read(labels);
    EXPECT_EQ(file.dataset(std::string(split) + "/images").dims(),
              (std::vector<hsize_t>{n, spec.rows, spec.cols, 1}));
    EXPECT_EQ(images, data->images) << split;
    EXPECT_EQ(labels, data->labels) << split;
  }
  std::vector<double> mean, std;
  reference_mean_std(train.images, 1, mean, std);
  EXPECT_NEAR(file.doubles_attribute("mean")[0], mean[0], 1e-12);
  EXPECT_NEAR(file.doubles_attribute("std")[0], std[0], 1e-12);
  std::map<std::string, std::string> sources;
  for (const auto& entry : fs::directory_iterator(src.path()))
    sources[entry.path().filename().string()] = sha256_file(entry.path().string());
  EXPECT_EQ(sources.size(), 4u);
  expect_sources(file, sources);
}

TEST(IdxPack, PlainMnist) {
  check_idx_pack({.train = 300, .test = 50}, PackFormat::mnist,
                 {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"});
}

// The same source packed twice, more than a second apart, is the same bytes: HDF5 objects carry
// no timestamps (the 1-second clock they would record changes in between), so a packed file's
// checksum names its contents.
TEST(IdxPack, TheSameSourcePacksToTheSameBytes) {
  TempDir src, out;
  testing::write_idx_dir(src.path().string(), {.train = 40, .test = 10});
  pack_dataset({PackFormat::mnist, src.path().string(), out / "first.h5"});
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  pack_dataset({PackFormat::mnist, src.path().string(), out / "second.h5"});
  const std::vector<uint8_t> first = testing::read_file(out / "first.h5");
  EXPECT_FALSE(first.empty());
  EXPECT_TRUE(first == testing::read_file(out / "second.h5"));
}

TEST(IdxPack, GzippedFashionMnistWithOddShape) {
  check_idx_pack({.train = 257,
                  .test = 31,
                  .rows = 5,
                  .cols = 7,
                  .gz_images = true,
                  .gz_labels = true,
                  .seed = 3},
                 PackFormat::fashion_mnist,
                 {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                  "Sneaker", "Bag", "Ankle boot"});
}

// A .gz of several members (files joined with cat, as gzip(1) and Python's gzip module read
// them) and zero padding after the stream pack as the one file they hold.
TEST(IdxPack, GzipMembersAndZeroPaddingAreOneStream) {
  TempDir src, out;
  auto [train, test] = testing::write_idx_dir(src.path().string(), {.train = 12, .test = 4});
  const fs::path images = src / "train-images-idx3-ubyte";
  const std::vector<uint8_t> plain = testing::read_file(images);
  const size_t half = plain.size() / 2;
  testing::write_gz(out / "a.gz", {plain.begin(), plain.begin() + half});
  testing::write_gz(out / "b.gz", {plain.begin() + half, plain.end()});
  std::vector<uint8_t> joined = testing::read_file(out / "a.gz");
  const std::vector<uint8_t> second = testing::read_file(out / "b.gz");
  joined.insert(joined.end(), second.begin(), second.end());
  joined.resize(joined.size() + 512, 0);  // padding, as a tape block leaves it
  fs::remove(images);
  testing::write_file(images.string() + ".gz", joined);
  pack_dataset({PackFormat::mnist, src.path().string(), out / "p.h5"});
  std::vector<uint8_t> packed;
  h5::File(out / "p.h5", h5::File::Mode::read).dataset("train/images").read(packed);
  EXPECT_EQ(packed, train.images);
}

TEST(IdxPack, MixedPlainAndGzip) {
  check_idx_pack({.train = 64, .test = 16, .gz_images = true, .gz_labels = false, .seed = 9},
                 PackFormat::mnist, {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"});
}

// Both a plain file and its .gz (which may differ): the plain one is packed, as the
// sources attribute records, and the log says so.
TEST(IdxPack, APlainFileBesideItsGzipIsPackedAndSaidSo) {
  TempDir src, out;
  auto [train, test] = testing::write_idx_dir(src.path().string(), {.train = 12, .test = 4});
  testing::write_gz(
      src / "train-images-idx3-ubyte.gz",
      testing::idx_bytes(0x803, {12, 28, 28}, testing::random_bytes(12 * 28 * 28, 5)));
  ::testing::internal::CaptureStdout();
  pack_dataset({PackFormat::mnist, src.path().string(), out / "p.h5"});
  const std::string log = ::testing::internal::GetCapturedStdout();
  EXPECT_NE(log.find("train-images-idx3-ubyte and train-images-idx3-ubyte.gz are both there: "
                     "packing train-images-idx3-ubyte"),
            std::string::npos)
      << log;
  std::vector<uint8_t> images;
  h5::File(out / "p.h5", h5::File::Mode::read).dataset("train/images").read(images);
  EXPECT_EQ(images, train.images);
}

TEST(IdxPack, AutoDetectsFromDirectoryName) {
  TempDir src("fashion_mnist_src"), plain("idx_src"), out;
  testing::write_idx_dir(src.path().string(), {.train = 10, .test = 5});
  testing::write_idx_dir(plain.path().string(), {.train = 10, .test = 5});
  EXPECT_EQ(pack_dataset({PackFormat::automatic, src.path().string(), out / "a.h5"}).format,
            PackFormat::fashion_mnist);
  EXPECT_THROW_WITH(pack_dataset({PackFormat::automatic, plain.path().string(), out / "b.h5"}),
                    UsageError, "cannot be told apart");
  // The nearest folder naming MNIST decides, not a "fashion" anywhere in the path.
  TempDir nested("idx_nested");
  const std::string mnist_in_project = (nested.path() / "fashion_project" / "mnist").string();
  const std::string torchvision_raw = (nested.path() / "FashionMNIST" / "raw").string();
  for (const std::string& dir : {mnist_in_project, torchvision_raw}) {
    std::filesystem::create_directories(dir);
    testing::write_idx_dir(dir, {.train = 10, .test = 5});
  }
  EXPECT_EQ(pack_dataset({PackFormat::automatic, mnist_in_project, out / "f.h5"}).format,
            PackFormat::mnist);
  EXPECT_EQ(pack_dataset({PackFormat::automatic, torchvision_raw, out / "g.h5"}).format,
            PackFormat::fashion_mnist);
  EXPECT_THROW_WITH(parse_enum_option<PackFormat>("format", "imagenet"), UsageError,
                    "option --format: 'imagenet' must be auto, cifar10, cifar100, mnist, "
                    "fashion-mnist or folder");
  EXPECT_THROW_WITH(
      pack_dataset({PackFormat::automatic, out.path().string(), out / "d.h5"}), UsageError,
      "cannot detect the dataset format (no data_batch_1.bin, no train-images-idx3-ubyte[.gz]); "
      "pass it: --format folder for folders of images");
  // A missing source is the input's fault, as with an explicit format (exit 3, not 2).
  EXPECT_THROW_WITH(pack_dataset({PackFormat::automatic, out / "missing", out / "e.h5"}), DataError,
                    "missing: not a directory");
}

class IdxErrors : public ::testing::Test {
 protected:
  void SetUp() override {
    data = testing::write_idx_dir(src.path().string(), {.train = 40, .test = 10});
  }
  // Replaces the split file `name` with `name`.gz (so the .gz one is read); returns its bytes.
  std::vector<uint8_t> gzip_instead(const std::string& name) {
    const std::vector<uint8_t> bytes = testing::read_file(src / name);
    fs::remove(src / name);
    testing::write_gz(src / (name + ".gz"), bytes);
    return testing::read_file(src / (name + ".gz"));
  }
  void expect_failure(const std::string& file, const std::string& problem) {
    std::string output = out / "x.h5";
    std::string message = testing::message_of<DataError>([&] {
      pack_dataset({PackFormat::mnist, src.path().string(), output});
    });
    EXPECT_NE(message.find(file), std::string::npos) << message;
    EXPECT_NE(message.find(problem), std::string::npos) << message;
    EXPECT_FALSE(fs::exists(output));
    EXPECT_FALSE(fs::exists(output + ".tmp"));
  }
  TempDir src, out;
  std::pair<testing::IdxSplitData, testing::IdxSplitData> data;
};

TEST_F(IdxErrors, BadMagic) {
  testing::write_file(src / "train-labels-idx1-ubyte",
                      testing::idx_bytes(0x803, {40}, data.first.labels));
  expect_failure("train-labels-idx1-ubyte", "bad IDX magic");
}

TEST_F(IdxErrors, CountMismatch) {
  testing::write_file(src / "t10k-labels-idx1-ubyte",
                      testing::idx_bytes(0x801, {9}, testing::random_bytes(9, 1, 10)));
  expect_failure("t10k-labels-idx1-ubyte", "holds 10 images but");
}

TEST_F(IdxErrors, LabelOutOfRange) {
  data.second.labels[7] = 10;
  testing::write_gz(src / "t10k-labels-idx1-ubyte.gz",
                    testing::idx_bytes(0x801, {10}, data.second.labels));
  fs::remove(src / "t10k-labels-idx1-ubyte");  // so the .gz one is read
  expect_failure("t10k-labels-idx1-ubyte.gz", "record 7 has label 10");
}

TEST_F(IdxErrors, TruncatedFile) {
  auto bytes = testing::read_file(src / "train-images-idx3-ubyte");
  bytes.resize(bytes.size() - 1);
  testing::write_file(src / "train-images-idx3-ubyte", bytes);
  expect_failure("train-images-idx3-ubyte", "header promises");
}

TEST_F(IdxErrors, TruncatedGzip) {
  auto gz = gzip_instead("train-images-idx3-ubyte");
  gz.resize(gz.size() / 2);
  testing::write_file(src / "train-images-idx3-ubyte.gz", gz);
  expect_failure("train-images-idx3-ubyte.gz", "truncated gzip stream");
}

// Bytes after the stream that are neither zeros nor a gzip member: refused, as Python's gzip
// refuses them, though the IDX payload before them is whole (zlib's gzread drops them).
TEST_F(IdxErrors, DataAfterTheGzipStream) {
  auto gz = gzip_instead("t10k-labels-idx1-ubyte");
  gz.insert(gz.end(), {0, 0, 'x', 'y'});
  testing::write_file(src / "t10k-labels-idx1-ubyte.gz", gz);
  expect_failure("t10k-labels-idx1-ubyte.gz",
                 "2 bytes after the gzip stream that are neither padding nor another gzip member");
}

TEST_F(IdxErrors, MissingFile) {
  fs::remove(src / "t10k-images-idx3-ubyte");
  expect_failure("t10k-images-idx3-ubyte", "not found");
}

// Said as what they are: an empty file is not a bad magic number, a folder not a missing file.
TEST_F(IdxErrors, AnEmptyFileOrAFolderInItsPlace) {
  fs::remove(src / "t10k-images-idx3-ubyte");
  testing::write_file(src / "t10k-images-idx3-ubyte.gz", {});
  expect_failure("t10k-images-idx3-ubyte.gz", "empty file (0 bytes)");
  fs::remove(src / "t10k-images-idx3-ubyte.gz");
  fs::create_directory(src / "t10k-images-idx3-ubyte");
  expect_failure("t10k-images-idx3-ubyte", "not a regular file, where the IDX file should be");
}

}  // namespace
}  // namespace dp::data
