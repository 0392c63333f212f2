// Reads the CIFAR-10 binary version: each batch file is 10000 records of one label byte then
// 3072 image bytes as three 32x32 row-major planes (R, G, B); we convert to channels-last.
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>

#include "core/error.h"
#include "data/raw_dataset.h"
#include "data/source_parsers.h"
#include "data/sha256.h"

namespace dp::data {
namespace {

constexpr int64_t kSide = 32, kChannels = 3, kPlane = kSide * kSide;
constexpr int64_t kRecordBytes = 1 + kChannels * kPlane;  // 3073
constexpr int64_t kRecordsPerBatch = 10000;
constexpr int kNumClasses = 10;

void parse_size_check(uint64_t size, const std::string& name) {
  if (size % kRecordBytes != 0)
    throw DataError(
        fmt::format("{}: size {} bytes is not a multiple of the {}-byte record "
                    "(truncated or not the CIFAR-10 binary version)",
                    name, size, kRecordBytes));
  if (size != kRecordBytes * kRecordsPerBatch)
    throw DataError(fmt::format("{}: holds {} records, a CIFAR-10 batch holds {}", name,
                                size / kRecordBytes, kRecordsPerBatch));
}

std::vector<uint8_t> read_whole_file(const std::filesystem::path& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec))
    throw DataError(fmt::format("{}: CIFAR-10 file not found", path.string()));
  auto size = std::filesystem::file_size(path, ec);
  if (ec) throw DataError(fmt::format("{}: cannot stat: {}", path.string(), ec.message()));
  // Checked here too so a wrong file is refused before it is read whole.
  parse_size_check(size, path.string());
  std::vector<uint8_t> bytes(size);
  std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(path.c_str(), "rb"), std::fclose);
  if (!f || std::fread(bytes.data(), 1, size, f.get()) != size)
    throw DataError(fmt::format("{}: read failed", path.string()));
  return bytes;
}

// Appends the records of one batch file to `split`.
void append_batch(const std::filesystem::path& path, RawSplit& split, RawDataset& out) {
  std::vector<uint8_t> bytes = read_whole_file(path);
  out.sources.emplace_back(path.filename().string(), sha256_hex(bytes.data(), bytes.size()));
  parse_cifar10_batch(bytes.data(), bytes.size(), path.string(), split);
}

std::vector<std::string> read_class_names(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in) throw DataError(fmt::format("{}: CIFAR-10 class-name file not found", path.string()));
  std::vector<std::string> names;
  std::string line;
  while (std::getline(in, line)) {
    // The official file ends with blank lines; tolerate CRLF too.
    while (!line.empty() && std::isspace(static_cast<unsigned char>(line.back()))) line.pop_back();
    if (!line.empty()) names.push_back(line);
  }
  if (names.size() != kNumClasses)
    throw DataError(fmt::format("{}: holds {} class names, expected {}", path.string(),
                                names.size(), kNumClasses));
  return names;
}

}  // namespace

void parse_cifar10_batch(const uint8_t* bytes, size_t size, const std::string& name,
                         RawSplit& split) {
  parse_size_check(size, name);
  const int64_t first = split.count;
  split.labels.resize(first + kRecordsPerBatch);
  split.images.resize((first + kRecordsPerBatch) * kChannels * kPlane);
  for (int64_t r = 0; r < kRecordsPerBatch; ++r) {
    const uint8_t* record = bytes + r * kRecordBytes;
    if (record[0] >= kNumClasses) {
      // Leave `split` as it was: a caller that catches the error keeps a consistent split.
      split.labels.resize(first);
      split.images.resize(first * kChannels * kPlane);
      throw DataError(fmt::format("{}: record {} has label {} (CIFAR-10 labels are 0..9)",
                                  name, r, record[0]));
    }
    split.labels[first + r] = record[0];
    // CHW planes to HWC.
    const uint8_t* planes = record + 1;
    uint8_t* hwc = split.images.data() + (first + r) * kChannels * kPlane;
    for (int64_t p = 0; p < kPlane; ++p)
      for (int64_t c = 0; c < kChannels; ++c) hwc[p * kChannels + c] = planes[c * kPlane + p];
  }
  split.count = first + kRecordsPerBatch;
}

RawDataset read_cifar10(const std::string& dir) {
  std::filesystem::path root(dir);
  RawDataset out;
  out.name = "cifar10";
  out.height = out.width = kSide;
  out.channels = kChannels;
  auto meta = root / "batches.meta.txt";
  out.class_names = read_class_names(meta);
  out.sources.emplace_back(meta.filename().string(), sha256_file(meta.string()));
  for (int b = 1; b <= 5; ++b)
    append_batch(root / fmt::format("data_batch_{}.bin", b), out.train, out);
  append_batch(root / "test_batch.bin", out.test, out);
  return out;
}

}  // namespace dp::data
