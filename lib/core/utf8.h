// UTF-8 well-formedness (RFC 3629: no overlong forms, surrogates or code points past U+10FFFF),
// for text dptrain stores as UTF-8 (class names) or prints (error lines).
#pragma once

#include <cstddef>
#include <string>

namespace dp::utf8 {

// The length of the well-formed UTF-8 sequence starting at s[i] (1 to 4), or 0 where the
// bytes there are not one.
size_t sequence_length(const std::string& s, size_t i);

// Whether all of `s` is well-formed UTF-8.
bool valid(const std::string& s);

}  // namespace dp::utf8
