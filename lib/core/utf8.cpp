#include "core/utf8.h"

#include <fmt/format.h>

#include <cstdint>

namespace dp::utf8 {
namespace {

// The continuation bytes a lead byte announces; -1 for a byte that leads nothing.
int continuation_bytes(unsigned char lead) {
  if (lead < 0x80) return 0;
  if ((lead >> 5) == 0x6) return 1;
  if ((lead >> 4) == 0xe) return 2;
  if ((lead >> 3) == 0x1e) return 3;
  return -1;
}

// The length of the well-formed sequence at s[i] (0 where there is none), its code point into
// `code`.
size_t decode_at(const std::string& s, size_t i, char32_t& code) {
  static constexpr uint32_t kLeast[4] = {0, 0x80, 0x800, 0x10000};  // no overlong forms
  const auto lead = static_cast<unsigned char>(s[i]);
  const int extra = continuation_bytes(lead);
  if (extra < 0 || s.size() - i <= size_t(extra)) return 0;
  code = extra == 0 ? lead : lead & (0x7f >> (extra + 1));  // the lead's payload bits
  for (int k = 1; k <= extra; ++k) {
    const auto c = static_cast<unsigned char>(s[i + k]);
    if ((c >> 6) != 0x2) return 0;
    code = (code << 6) | (c & 0x3f);
  }
  if (code < kLeast[extra] || code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff)) return 0;
  return size_t(extra) + 1;
}

}  // namespace

size_t sequence_length(const std::string& s, size_t i) {
  char32_t code;
  return decode_at(s, i, code);
}

bool valid(const std::string& s) {
  for (size_t i = 0; i < s.size();) {
    const size_t n = sequence_length(s, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

std::u32string python_code_points(const std::string& s) {
  std::u32string out;
  for (size_t i = 0; i < s.size();) {
    char32_t code = 0;
    const size_t n = decode_at(s, i, code);
    // surrogateescape: a byte 0x80..0xff outside a well-formed sequence
    out.push_back(n == 0 ? char32_t(0xdc00 + static_cast<unsigned char>(s[i])) : code);
    i += n == 0 ? 1 : n;
  }
  return out;
}

std::string escaped(const std::string& text) {
  std::string out;
  for (size_t i = 0; i < text.size();) {
    const auto byte = static_cast<unsigned char>(text[i]);
    char32_t code = 0;
    const size_t n = decode_at(text, i, code);
    if (byte == '\n')
      out += "\\n";
    else if (n == 0 || byte < 0x20 || byte == 0x7f)
      out += fmt::format("\\x{:02x}", byte);
    else if ((code >= 0x80 && code <= 0x9f) || code == 0x2028 || code == 0x2029)
      out += fmt::format("\\u{:04x}", uint32_t(code));  // C1 controls, line separators
    else
      out.append(text, i, n);
    i += n == 0 ? 1 : n;
  }
  return out;
}

}  // namespace dp::utf8
