// Reads the CIFAR-100 binary version: train.bin (50000 records) and test.bin (10000), each
// record a coarse label byte, a fine label byte and 3072 image bytes as three 32x32 row-major
// planes (R, G, B); we convert to channels-last, as for CIFAR-10.
#include <filesystem>

#include "core/error.h"
#include "data/cifar_records.h"
#include "data/raw_dataset.h"
#include "data/sha256.h"
#include "data/source_parsers.h"

namespace dp::data {
namespace {

constexpr int64_t kRecordBytes = 2 + kCifarImageBytes;  // 3074
constexpr int64_t kTrainRecords = 50000, kTestRecords = 10000;
constexpr int kFineClasses = 100, kCoarseClasses = 20;

void check_file_size(uint64_t size, const std::string& name, int64_t records) {
  if (size % kRecordBytes != 0)
    throw DataError(fmt::format("{}: size {} bytes is not a multiple of the {}-byte record "
                                "(truncated or not the CIFAR-100 binary version)",
                                name, size, kRecordBytes));
  if (int64_t(size / kRecordBytes) != records)
    throw DataError(fmt::format("{}: holds {} records, expected {}", name, size / kRecordBytes,
                                records));
}

}  // namespace

void parse_cifar100_file(const uint8_t* bytes, size_t size, const std::string& name,
                         int64_t records, bool fine, RawSplit& split) {
  check_file_size(size, name, records);
  const auto label = [&](const uint8_t* record, int64_t r) {
    if (record[0] >= kCoarseClasses || record[1] >= kFineClasses)
      throw DataError(fmt::format("{}: record {} has coarse label {} and fine label {} "
                                  "(CIFAR-100: 0..19 and 0..99)",
                                  name, r, record[0], record[1]));
    return fine ? record[1] : record[0];
  };
  append_cifar_records(bytes, records, 2, label, split);
}

RawDataset read_cifar100(const std::string& dir, bool fine) {
  const std::filesystem::path root(dir);
  RawDataset out;
  out.name = fine ? "cifar100" : "cifar100-coarse";
  out.height = out.width = kCifarSide;
  out.channels = kCifarChannels;
  const auto names = root / (fine ? "fine_label_names.txt" : "coarse_label_names.txt");
  out.class_names =
      read_cifar_names(names, fine ? kFineClasses : kCoarseClasses, "CIFAR-100 label");
  out.sources.emplace_back(names.filename().string(), sha256_file(names.string()));
  const std::pair<const char*, RawSplit*> files[] = {{"train.bin", &out.train},
                                                     {"test.bin", &out.test}};
  for (const auto& [file, split] : files) {
    const auto path = root / file;
    const int64_t records = split == &out.train ? kTrainRecords : kTestRecords;
    // Checked before the read too, so a wrong file is refused before it is read whole.
    const std::vector<uint8_t> bytes = read_cifar_file(
        path, "CIFAR-100", [&](uint64_t size) { check_file_size(size, path.string(), records); });
    out.sources.emplace_back(file, sha256_hex(bytes.data(), bytes.size()));
    parse_cifar100_file(bytes.data(), bytes.size(), path.string(), records, fine, *split);
  }
  return out;
}

}  // namespace dp::data
