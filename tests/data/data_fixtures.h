// Test fixtures for tests/data: temporary directories and small original-format datasets
// (CIFAR-10 binary batches, IDX files plain or gzipped) filled with known random bytes.
#pragma once

#include <fmt/format.h>
#include <zlib.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "data/packer.h"
#include "data/raw_dataset.h"

namespace dp::data::testing {

namespace fs = std::filesystem;

// A fresh directory removed (with its contents) when the object dies.
class TempDir {
 public:
  explicit TempDir(const std::string& tag = "dp_data_test") {
    static std::mt19937_64 names(std::random_device{}());
    path_ = fs::temp_directory_path() / fmt::format("{}_{:016x}", tag, names());
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const fs::path& path() const { return path_; }
  std::string operator/(const std::string& name) const { return (path_ / name).string(); }

 private:
  fs::path path_;
};

inline std::vector<uint8_t> random_bytes(size_t n, uint64_t seed, int bound = 256) {
  std::mt19937_64 rng(seed);
  std::vector<uint8_t> out(n);
  for (auto& b : out) b = static_cast<uint8_t>(rng() % bound);
  return out;
}

inline void write_file(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  if (!out) throw std::runtime_error("cannot write " + path);
}

inline void write_gz(const std::string& path, const std::vector<uint8_t>& bytes) {
  gzFile f = gzopen(path.c_str(), "wb");
  if (!f) throw std::runtime_error("cannot write " + path);
  if (!bytes.empty()) gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size()));
  gzclose(f);
}

inline std::vector<uint8_t> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

// ---------------------------------------------------------------- CIFAR-10

constexpr int64_t kCifarRecord = 3073, kCifarRecords = 10000;

inline const std::vector<std::string>& cifar_class_names() {
  static const std::vector<std::string> names = {
      "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"};
  return names;
}

inline void write_cifar_meta(const std::string& dir) {
  std::ofstream out(dir + "/batches.meta.txt");
  for (const auto& n : cifar_class_names()) out << n << "\n";
  out << "\n";  // the official file ends with a blank line
}

// One official-size batch file of random records with labels < 10; returns its bytes.
inline std::vector<uint8_t> cifar_batch_bytes(uint64_t seed) {
  std::vector<uint8_t> bytes = random_bytes(kCifarRecord * kCifarRecords, seed);
  std::mt19937_64 rng(seed ^ 0xabcdef);
  for (int64_t r = 0; r < kCifarRecords; ++r) bytes[r * kCifarRecord] = rng() % 10;
  return bytes;
}

inline std::vector<std::string> cifar_batch_names() {
  return {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin",
          "data_batch_4.bin", "data_batch_5.bin", "test_batch.bin"};
}

// ---------------------------------------------------------------- IDX

inline std::vector<uint8_t> idx_bytes(uint32_t magic, const std::vector<uint32_t>& dims,
                                      const std::vector<uint8_t>& payload) {
  std::vector<uint8_t> out;
  auto put = [&](uint32_t v) {
    for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<uint8_t>(v >> s));
  };
  put(magic);
  for (uint32_t d : dims) put(d);
  out.insert(out.end(), payload.begin(), payload.end());
  return out;
}

struct IdxSplitData {
  std::vector<uint8_t> images, labels;
};

struct IdxDirSpec {
  uint32_t train = 300, test = 50, rows = 28, cols = 28;
  bool gz_images = false, gz_labels = false;
  uint64_t seed = 1;
};

// Writes the four IDX files; returns the train and test contents.
inline std::pair<IdxSplitData, IdxSplitData> write_idx_dir(const std::string& dir,
                                                           const IdxDirSpec& spec) {
  std::pair<IdxSplitData, IdxSplitData> out;
  const std::pair<const char*, uint32_t> splits[] = {{"train", spec.train}, {"t10k", spec.test}};
  int k = 0;
  for (auto [prefix, n] : splits) {
    IdxSplitData& d = k++ == 0 ? out.first : out.second;
    d.images = random_bytes(size_t(n) * spec.rows * spec.cols, spec.seed * 7 + k);
    d.labels = random_bytes(n, spec.seed * 13 + k, 10);
    std::string images = dir + "/" + prefix + "-images-idx3-ubyte";
    std::string labels = dir + "/" + prefix + "-labels-idx1-ubyte";
    auto image_file = idx_bytes(0x803, {n, spec.rows, spec.cols}, d.images);
    auto label_file = idx_bytes(0x801, {n}, d.labels);
    spec.gz_images ? write_gz(images + ".gz", image_file) : write_file(images, image_file);
    spec.gz_labels ? write_gz(labels + ".gz", label_file) : write_file(labels, label_file);
  }
  return out;
}

// A small RawDataset of random images, written with the packer's own writer (for reader,
// sampler and loader tests that do not care about the original formats).
inline void write_synthetic_packed(const std::string& path, int64_t train, int64_t test, int64_t h,
                                   int64_t w, int64_t c, uint64_t seed = 5,
                                   h5::Checksum checksum = h5::Checksum::fletcher32) {
  RawDataset raw;
  raw.name = "synthetic";
  raw.class_names = {"a", "b", "c", "d", "e", "f", "g"};
  raw.height = h;
  raw.width = w;
  raw.channels = c;
  raw.train = {train, random_bytes(train * h * w * c, seed), random_bytes(train, seed + 1, 7)};
  raw.test = {test, random_bytes(test * h * w * c, seed + 2), random_bytes(test, seed + 3, 7)};
  raw.sources = {{"random-seed-" + std::to_string(seed), "-"}};
  std::vector<double> mean, std;
  channel_mean_std(raw.train, c, mean, std);
  write_packed(raw, path, mean, std, checksum);
}

}  // namespace dp::data::testing
