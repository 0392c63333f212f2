// Reads the CIFAR-10 binary version: each batch file is 10000 records of one label byte then
// 3072 image bytes as three 32x32 row-major planes (R, G, B); we convert to channels-last.
#include <filesystem>

#include "core/error.h"
#include "data/cifar_records.h"
#include "data/raw_dataset.h"
#include "data/sha256.h"
#include "data/source_parsers.h"

namespace dp::data {
namespace {

constexpr int64_t kRecordBytes = 1 + kCifarImageBytes;  // 3073
constexpr int64_t kRecordsPerBatch = 10000;
constexpr int kNumClasses = 10;

void check_batch_size(uint64_t size, const std::string& name) {
  if (size % kRecordBytes != 0)
    throw DataError(
        fmt::format("{}: size {} bytes is not a multiple of the {}-byte record "
                    "(truncated or not the CIFAR-10 binary version)",
                    name, size, kRecordBytes));
  if (size != kRecordBytes * kRecordsPerBatch)
    throw DataError(fmt::format("{}: holds {} records, a CIFAR-10 batch holds {}", name,
                                size / kRecordBytes, kRecordsPerBatch));
}

// Appends the records of one batch file to `split`.
void append_batch(const std::filesystem::path& path, RawSplit& split, RawDataset& out) {
  const std::vector<uint8_t> bytes = read_cifar_file(
      path, "CIFAR-10", [&](uint64_t size) { check_batch_size(size, path.string()); });
  out.sources.emplace_back(path.filename().string(), sha256_hex(bytes.data(), bytes.size()));
  parse_cifar10_batch(bytes.data(), bytes.size(), path.string(), split);
}

}  // namespace

void parse_cifar10_batch(const uint8_t* bytes, size_t size, const std::string& name,
                         RawSplit& split) {
  check_batch_size(size, name);
  const auto label = [&](const uint8_t* record, int64_t r) {
    if (record[0] >= kNumClasses)
      throw DataError(fmt::format("{}: record {} has label {} (CIFAR-10 labels are 0..9)", name,
                                  r, record[0]));
    return record[0];
  };
  append_cifar_records(bytes, kRecordsPerBatch, 1, label, split);
}

RawDataset read_cifar10(const std::string& dir) {
  const std::filesystem::path root(dir);
  RawDataset out;
  out.name = "cifar10";
  out.height = out.width = kCifarSide;
  out.channels = kCifarChannels;
  const auto meta = root / "batches.meta.txt";
  out.class_names = read_cifar_names(meta, kNumClasses, "CIFAR-10 class");
  out.sources.emplace_back(meta.filename().string(), sha256_file(meta.string()));
  for (int b = 1; b <= 5; ++b)
    append_batch(root / fmt::format("data_batch_{}.bin", b), out.train, out);
  append_batch(root / "test_batch.bin", out.test, out);
  return out;
}

}  // namespace dp::data
