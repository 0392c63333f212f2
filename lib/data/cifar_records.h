// What the CIFAR-10 and CIFAR-100 binary readers share: both files are records of label bytes
// then 3072 image bytes as three 32x32 row-major planes (R, G, B), which we store channels-last,
// beside a text file of names, one per line.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "data/raw_dataset.h"

namespace dp::data {

inline constexpr int64_t kCifarSide = 32, kCifarChannels = 3;
inline constexpr int64_t kCifarImageBytes = kCifarChannels * kCifarSide * kCifarSide;  // 3072

// The whole file; `check_size` sees its size first (and throws), so a wrong file is refused
// before it is read. `dataset` names the format in the not-found error ("CIFAR-10").
std::vector<uint8_t> read_cifar_file(const std::filesystem::path& path, const std::string& dataset,
                                     const std::function<void(uint64_t)>& check_size);

// The non-empty lines of a names file (trailing blanks and CR stripped); DataError unless there
// are `expected` of them. `kind` names them in errors ("CIFAR-10 class", "CIFAR-100 label").
std::vector<std::string> read_cifar_names(const std::filesystem::path& path, size_t expected,
                                          const std::string& kind);

// Appends `records` records of `label_bytes` label bytes and one image each to `split`.
// `label(record, index)` returns the label kept, or throws; `split` is then left as it was.
void append_cifar_records(const uint8_t* bytes, int64_t records, int64_t label_bytes,
                          const std::function<uint8_t(const uint8_t*, int64_t)>& label,
                          RawSplit& split);

}  // namespace dp::data
