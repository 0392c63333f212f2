// Test helpers for corruption tests: where a dataset's chunks lie in its file, and flipping
// one byte of a file in place. Flips go into a copy so each one is tried alone.
#pragma once

#include <hdf5.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

namespace dp::testing {

struct ByteRange {
  uint64_t offset = 0, size = 0;
  uint64_t first_row = 0;  // the chunk's first element along dimension 0
};

// The file offset and stored size of every chunk of `dataset` in `path` (the payload that the
// chunk's Fletcher-32 covers, its 4 checksum bytes at the end included).
inline std::vector<ByteRange> chunk_ranges(const std::string& path, const std::string& dataset) {
  std::vector<ByteRange> ranges;
  hid_t file = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  hid_t ds = H5Dopen2(file, dataset.c_str(), H5P_DEFAULT);
  hid_t space = H5Dget_space(ds);
  hsize_t chunks = 0;
  H5Dget_num_chunks(ds, space, &chunks);
  for (hsize_t i = 0; i < chunks; ++i) {
    hsize_t coords[8];
    unsigned mask = 0;
    haddr_t addr = 0;
    hsize_t size = 0;
    H5Dget_chunk_info(ds, space, i, coords, &mask, &addr, &size);
    ranges.push_back({addr, size, coords[0]});
  }
  H5Sclose(space);
  H5Dclose(ds);
  H5Fclose(file);
  return ranges;
}

// XORs the byte at `offset` of `path` with `mask` (non-zero).
inline void flip_byte(const std::string& path, uint64_t offset, uint8_t mask) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(static_cast<std::streamoff>(offset));
  char byte = 0;
  f.read(&byte, 1);
  byte = static_cast<char>(static_cast<uint8_t>(byte) ^ mask);
  f.seekp(static_cast<std::streamoff>(offset));
  f.write(&byte, 1);
}

// Copies `original` to `copy` and flips one byte inside a random chunk of `dataset` there;
// returns that chunk.
inline ByteRange copy_with_payload_flip(const std::string& original, const std::string& dataset,
                                        std::mt19937_64& rng, const std::string& copy) {
  const auto ranges = chunk_ranges(original, dataset);
  const ByteRange chunk = ranges.at(rng() % ranges.size());
  std::filesystem::copy_file(original, copy, std::filesystem::copy_options::overwrite_existing);
  flip_byte(copy, chunk.offset + rng() % chunk.size, static_cast<uint8_t>(1 + rng() % 255));
  return chunk;
}

// Offsets of HDF5's checksummed metadata in `path`: the superblock (v2: 48 bytes) and the
// first bytes of each v2 object header ("OHDR" and its version, flags and first messages).
inline std::vector<uint64_t> checksummed_metadata_offsets(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<uint64_t> offsets;
  for (uint64_t i = 0; i < 48; ++i) offsets.push_back(i);
  for (size_t at = bytes.find("OHDR"); at != std::string::npos; at = bytes.find("OHDR", at + 4))
    for (uint64_t i = 0; i < 24; ++i) offsets.push_back(at + i);
  return offsets;
}

// Whether the bytes of `path` contain `text` (an HDF5 structure's signature, "GCOL", "TREE").
inline bool file_contains(const std::string& path, const std::string& text) {
  std::ifstream in(path, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return bytes.find(text) != std::string::npos;
}

}  // namespace dp::testing
