// The one place OpenSSL (libcrypto) failures become dp::Error: a libcrypto call that does not
// return 1 (its success value) throws dp::Error(internal), naming the call, the source location
// and the reasons OpenSSL queued, and leaves OpenSSL's error queue empty.
#pragma once

#include <openssl/err.h>

#include <string>

#include "core/error.h"

namespace dp::data {

[[noreturn]] inline void throw_openssl_error(const char* call, const char* file, int line) {
  std::string reasons;
  while (const unsigned long code = ERR_get_error()) {
    char text[256];
    ERR_error_string_n(code, text, sizeof text);
    reasons += reasons.empty() ? text : std::string("; ") + text;
  }
  throw_library_error(ExitCode::internal, file, line, call,
                      reasons.empty() ? "no OpenSSL reason" : reasons);
}

}  // namespace dp::data

#define DP_OPENSSL_CHECK(expr)                                                   \
  do {                                                                           \
    if ((expr) != 1) ::dp::data::throw_openssl_error(#expr, __FILE__, __LINE__); \
  } while (0)
