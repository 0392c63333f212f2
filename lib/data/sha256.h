// SHA-256 (FIPS 180-4), used to record which source files a packed dataset came from.
// Small and dependency-free; checked against the FIPS test vectors in tests/data.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

namespace dp::data {

class Sha256 {
 public:
  Sha256();
  void update(const void* data, size_t size);
  std::array<uint8_t, 32> finish();  // the object must not be updated afterwards
  std::string finish_hex();

 private:
  void compress(const uint8_t* block);
  std::array<uint32_t, 8> state_;
  std::array<uint8_t, 64> buffer_{};
  size_t buffered_ = 0;
  uint64_t total_bytes_ = 0;
};

std::string sha256_hex(const void* data, size_t size);
// Hashes a file's bytes as stored (a .gz file is hashed compressed). Throws DataError.
std::string sha256_file(const std::string& path);

}  // namespace dp::data
