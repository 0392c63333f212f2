#include "data/sha256.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <cstdio>
#include <vector>

#include "core/error.h"
#include "core/input_file.h"
#include "data/openssl_check.h"

namespace dp::data {

void Sha256::FreeContext::operator()(EVP_MD_CTX* context) const { EVP_MD_CTX_free(context); }

Sha256::Sha256() : context_(EVP_MD_CTX_new()) {
  if (context_ == nullptr) throw_openssl_error("EVP_MD_CTX_new()", __FILE__, __LINE__);
  DP_OPENSSL_CHECK(EVP_DigestInit_ex(context_.get(), EVP_sha256(), nullptr));
}

void Sha256::update(const void* data, size_t size) {
  DP_CHECK(!finished_, "Sha256::update after finish");
  DP_OPENSSL_CHECK(EVP_DigestUpdate(context_.get(), data, size));
}

std::array<uint8_t, 32> Sha256::finish() {
  DP_CHECK(!finished_, "Sha256::finish called twice");
  std::array<uint8_t, 32> digest;
  unsigned int length = 0;
  DP_OPENSSL_CHECK(EVP_DigestFinal_ex(context_.get(), digest.data(), &length));
  DP_CHECK(length == digest.size(), "SHA-256 digest of {} bytes", length);
  finished_ = true;
  return digest;
}

std::string Sha256::finish_hex() {
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (uint8_t byte : finish()) {
    out += hex[byte >> 4];
    out += hex[byte & 15];
  }
  return out;
}

std::string sha256_hex(const void* data, size_t size) {
  Sha256 h;
  h.update(data, size);
  return h.finish_hex();
}

std::string sha256_file(const std::string& path) {
  InputFile f = open_input_file(path);
  if (!f) throw DataError(fmt::format("{}: cannot open for reading", path));
  Sha256 h;
  std::vector<char> buffer(1 << 20);
  size_t n;
  while ((n = std::fread(buffer.data(), 1, buffer.size(), f.get())) > 0) h.update(buffer.data(), n);
  if (std::ferror(f.get())) throw DataError(fmt::format("{}: read error", path));
  return h.finish_hex();
}

std::string openssl_version() {
#ifdef OPENSSL_VERSION_STRING  // OpenSSL 3: the bare "3.0.19"
  return OpenSSL_version(OPENSSL_VERSION_STRING);
#else  // 1.1.1 names itself: "OpenSSL 1.1.1w  11 Sep 2023"
  return OpenSSL_version(OPENSSL_VERSION);
#endif
}

}  // namespace dp::data
