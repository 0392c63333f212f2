// The packers' parsers as functions of bytes in memory: one CIFAR-10 binary batch, one IDX
// file's contents. The file readers (cifar10_source.cpp, idx_source.cpp) call them after reading
// a file; the libFuzzer targets (tests/reliability/fuzz_*.cpp) and the corpus replay test call
// them directly. Every malformed input is a DataError that starts with `name`; none may crash.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "data/raw_dataset.h"

namespace dp::data {

// Appends the records of one CIFAR-10 binary batch (10000 records of a label byte and three
// 32x32 planes) to `split` as channels-last images.
void parse_cifar10_batch(const uint8_t* bytes, size_t size, const std::string& name,
                         RawSplit& split);

struct IdxArray {
  std::vector<uint32_t> dims;
  std::vector<uint8_t> payload;  // the elements after the header; exactly prod(dims) bytes
};

constexpr uint32_t kIdxImagesMagic = 0x00000803;  // unsigned byte, 3 dimensions
constexpr uint32_t kIdxLabelsMagic = 0x00000801;  // unsigned byte, 1 dimension

// Parses a whole (decompressed) IDX file that must carry `magic`.
IdxArray parse_idx(std::vector<uint8_t> bytes, uint32_t magic, const std::string& name);

}  // namespace dp::data

namespace dp::data {

// Appends the records of one CIFAR-100 binary file (records of a coarse label byte, a fine
// label byte and three 32x32 planes; `records` of them) to `split`, keeping the fine (0..99)
// or the coarse (0..19) label.
void parse_cifar100_file(const uint8_t* bytes, size_t size, const std::string& name,
                         int64_t records, bool fine, RawSplit& split);

}  // namespace dp::data
