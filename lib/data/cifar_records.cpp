#include "data/cifar_records.h"

#include <cctype>
#include <cstdio>
#include <fstream>
#include <memory>

#include "core/error.h"
#include "core/input_file.h"
#include "core/utf8.h"

namespace dp::data {

std::vector<uint8_t> read_cifar_file(const std::filesystem::path& path, const std::string& dataset,
                                     const std::function<void(uint64_t)>& check_size) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec))
    throw DataError(fmt::format("{}: {} file not found", path.string(), dataset));
  const uint64_t size = std::filesystem::file_size(path, ec);
  if (ec) throw DataError(fmt::format("{}: cannot stat: {}", path.string(), ec.message()));
  check_size(size);
  std::vector<uint8_t> bytes(size);
  InputFile f = open_input_file(path);
  if (!f || std::fread(bytes.data(), 1, size, f.get()) != size)
    throw DataError(fmt::format("{}: read failed", path.string()));
  return bytes;
}

std::vector<std::string> read_cifar_names(const std::filesystem::path& path, size_t expected,
                                          const std::string& kind) {
  std::ifstream in(path);
  if (!in) throw DataError(fmt::format("{}: {}-name file not found", path.string(), kind));
  std::vector<std::string> names;
  std::string line;
  while (std::getline(in, line)) {
    // The official files end with blank lines; tolerate CRLF too.
    while (!line.empty() && std::isspace(static_cast<unsigned char>(line.back()))) line.pop_back();
    if (!line.empty()) names.push_back(line);
  }
  const std::string noun = kind.substr(kind.rfind(' ') + 1);  // "class", "label"
  if (names.size() != expected)
    throw DataError(fmt::format("{}: holds {} {} names, expected {}", path.string(), names.size(),
                                noun, expected));
  // Stored as UTF-8 text and printed one per line, as a folder's class names (folder_source).
  for (const std::string& name : names)
    if (!utf8::valid(name) || utf8::escaped(name) != name)
      throw DataError(fmt::format("{}: the {} name '{}' is not UTF-8 without control characters "
                                  "(names are stored as UTF-8 text, printed one per line)",
                                  path.string(), noun, name));
  // Two labels of one name could not be told apart in a report or a confusion matrix.
  for (size_t i = 0; i < names.size(); ++i)
    for (size_t j = i + 1; j < names.size(); ++j)
      if (names[i] == names[j])
        throw DataError(fmt::format("{}: the {} name '{}' is there twice (names {} and {})",
                                    path.string(), noun, names[i], i + 1, j + 1));
  return names;
}

void append_cifar_records(const uint8_t* bytes, int64_t records, int64_t label_bytes,
                          const std::function<uint8_t(const uint8_t*, int64_t)>& label,
                          RawSplit& split) {
  constexpr int64_t kPlane = kCifarSide * kCifarSide;
  const int64_t first = split.count, record_bytes = label_bytes + kCifarImageBytes;
  split.labels.resize(first + records);
  split.images.resize((first + records) * kCifarImageBytes);
  for (int64_t r = 0; r < records; ++r) {
    const uint8_t* record = bytes + r * record_bytes;
    try {
      split.labels[first + r] = label(record, r);
    } catch (...) {
      // Leave `split` as it was: a caller that catches the error keeps a consistent split.
      split.labels.resize(first);
      split.images.resize(first * kCifarImageBytes);
      throw;
    }
    const uint8_t* planes = record + label_bytes;  // CHW planes to HWC
    uint8_t* hwc = split.images.data() + (first + r) * kCifarImageBytes;
    for (int64_t p = 0; p < kPlane; ++p)
      for (int64_t c = 0; c < kCifarChannels; ++c) hwc[p * kCifarChannels + c] = planes[c * kPlane + p];
  }
  split.count = first + records;
}

}  // namespace dp::data
