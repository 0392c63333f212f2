// SHA-256 (FIPS 180-4), used to record which source files a packed dataset came from and to
// fingerprint each rank's --data file. Computed by OpenSSL's libcrypto (EVP interface);
// checked against the FIPS test vectors in tests/data.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

struct evp_md_ctx_st;  // OpenSSL's EVP_MD_CTX: only sha256.cpp sees libcrypto's headers

namespace dp::data {

// A streaming digest: update() any number of times, then finish() once. Move-only; it owns
// its OpenSSL context, which the destructor frees.
class Sha256 {
 public:
  Sha256();
  void update(const void* data, size_t size);
  std::array<uint8_t, 32> finish();  // the object must not be updated afterwards
  std::string finish_hex();          // finish() as 64 lower-case hex digits

 private:
  struct FreeContext {
    void operator()(evp_md_ctx_st* context) const;
  };
  std::unique_ptr<evp_md_ctx_st, FreeContext> context_;
  bool finished_ = false;
};

std::string sha256_hex(const void* data, size_t size);
// Hashes a file's bytes as stored (a .gz file is hashed compressed). Throws DataError.
std::string sha256_file(const std::string& path);

// The version of the libcrypto that computes the digests, as loaded at run time ("3.0.19").
std::string openssl_version();

}  // namespace dp::data
