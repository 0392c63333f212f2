// UTF-8 well-formedness (RFC 3629: no overlong forms, surrogates or code points past U+10FFFF),
// for text dptrain stores as UTF-8 (class names, file names) or prints (error lines).
#pragma once

#include <cstddef>
#include <string>

namespace dp::utf8 {

// The length of the well-formed UTF-8 sequence starting at s[i] (1 to 4), or 0 where the
// bytes there are not one.
size_t sequence_length(const std::string& s, size_t i);

// Whether all of `s` is well-formed UTF-8.
bool valid(const std::string& s);

// `s` as the code points Python's os.fsdecode gives a file name (UTF-8 with surrogateescape):
// a byte that is not part of well-formed UTF-8 becomes U+DC80..U+DCFF. Names sorted by these
// sort as Python's sorted() sorts them (torchvision's ImageFolder order); for well-formed UTF-8
// that is the bytes' order.
std::u32string python_code_points(const std::string& s);

// `text` as one line of well-formed UTF-8: a newline or other control character (C0, DEL, C1),
// a line or paragraph separator (U+2028/9: Python's splitlines breaks there too), and a byte
// that is not part of well-formed UTF-8 (a file name in another encoding), escaped (\n, \x1b,
// \u0085, \xe9); the rest as it is.
std::string escaped(const std::string& text);

}  // namespace dp::utf8
