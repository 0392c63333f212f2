// Reads the CIFAR-100 binary version: train.bin (50000 records) and test.bin (10000), each
// record a coarse label byte, a fine label byte and 3072 image bytes as three 32x32 row-major
// planes (R, G, B); we convert to channels-last, as for CIFAR-10.
#include <cctype>
#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "data/raw_dataset.h"
#include "data/sha256.h"
#include "data/source_parsers.h"

namespace dp::data {
namespace {

constexpr int64_t kSide = 32, kChannels = 3, kPlane = kSide * kSide;
constexpr int64_t kRecordBytes = 2 + kChannels * kPlane;  // 3074
constexpr int64_t kTrainRecords = 50000, kTestRecords = 10000;
constexpr int kFineClasses = 100, kCoarseClasses = 20;

std::vector<uint8_t> read_whole_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw DataError(fmt::format("{}: CIFAR-100 file not found", path.string()));
  in.seekg(0, std::ios::end);
  std::vector<uint8_t> bytes(static_cast<size_t>(in.tellg()));
  in.seekg(0);
  in.read(reinterpret_cast<char*>(bytes.data()), std::streamsize(bytes.size()));
  if (!in) throw DataError(fmt::format("{}: read failed", path.string()));
  return bytes;
}

std::vector<std::string> read_names(const std::filesystem::path& path, size_t expected) {
  std::ifstream in(path);
  if (!in) throw DataError(fmt::format("{}: CIFAR-100 label-name file not found", path.string()));
  std::vector<std::string> names;
  std::string line;
  while (std::getline(in, line)) {
    while (!line.empty() && std::isspace(static_cast<unsigned char>(line.back()))) line.pop_back();
    if (!line.empty()) names.push_back(line);
  }
  if (names.size() != expected)
    throw DataError(fmt::format("{}: holds {} label names, expected {}", path.string(),
                                names.size(), expected));
  return names;
}

}  // namespace

void parse_cifar100_file(const uint8_t* bytes, size_t size, const std::string& name,
                         int64_t records, bool fine, RawSplit& split) {
  if (size % kRecordBytes != 0)
    throw DataError(fmt::format("{}: size {} bytes is not a multiple of the {}-byte record "
                                "(truncated or not the CIFAR-100 binary version)",
                                name, size, kRecordBytes));
  if (int64_t(size / kRecordBytes) != records)
    throw DataError(fmt::format("{}: holds {} records, expected {}", name, size / kRecordBytes,
                                records));
  const int64_t first = split.count;
  split.labels.resize(first + records);
  split.images.resize((first + records) * kChannels * kPlane);
  for (int64_t r = 0; r < records; ++r) {
    const uint8_t* record = bytes + r * kRecordBytes;
    if (record[0] >= kCoarseClasses || record[1] >= kFineClasses) {
      split.labels.resize(first);  // leave `split` as it was
      split.images.resize(first * kChannels * kPlane);
      throw DataError(fmt::format("{}: record {} has coarse label {} and fine label {} "
                                  "(CIFAR-100: 0..19 and 0..99)",
                                  name, r, record[0], record[1]));
    }
    split.labels[first + r] = fine ? record[1] : record[0];
    const uint8_t* planes = record + 2;
    uint8_t* hwc = split.images.data() + (first + r) * kChannels * kPlane;
    for (int64_t p = 0; p < kPlane; ++p)
      for (int64_t c = 0; c < kChannels; ++c) hwc[p * kChannels + c] = planes[c * kPlane + p];
  }
  split.count = first + records;
}

RawDataset read_cifar100(const std::string& dir, bool fine) {
  const std::filesystem::path root(dir);
  RawDataset out;
  out.name = fine ? "cifar100" : "cifar100-coarse";
  out.height = out.width = kSide;
  out.channels = kChannels;
  const auto names = root / (fine ? "fine_label_names.txt" : "coarse_label_names.txt");
  out.class_names = read_names(names, fine ? kFineClasses : kCoarseClasses);
  out.sources.emplace_back(names.filename().string(), sha256_file(names.string()));
  const std::pair<const char*, RawSplit*> files[] = {{"train.bin", &out.train},
                                                     {"test.bin", &out.test}};
  for (const auto& [file, split] : files) {
    const auto path = root / file;
    const std::vector<uint8_t> bytes = read_whole_file(path);
    out.sources.emplace_back(file, sha256_hex(bytes.data(), bytes.size()));
    parse_cifar100_file(bytes.data(), bytes.size(), path.string(),
                        split == &out.train ? kTrainRecords : kTestRecords, fine, *split);
  }
  return out;
}

}  // namespace dp::data
