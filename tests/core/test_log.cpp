// Error lines: one line on stderr whatever the message quotes.
#include <gtest/gtest.h>

#include "core/log.h"

namespace dp {
namespace {

TEST(LogError, ControlCharactersInAMessageAreEscapedOntoOneLine) {
  testing::internal::CaptureStderr();
  log::error("{}: not a regular file", "dir/two\nlines\x1b[31m.png");
  EXPECT_EQ(testing::internal::GetCapturedStderr(),
            "dptrain: error: dir/two\\nlines\\x1b[31m.png: not a regular file\n");
}

// Well-formed UTF-8 is kept; a byte outside it (a Latin-1 name, an overlong form, a surrogate,
// a sequence cut short) is escaped, so the line stays UTF-8 text.
TEST(LogError, BytesOutsideWellFormedUtf8AreEscaped) {
  testing::internal::CaptureStderr();
  log::error("{}", "caf\xc3\xa9 caf\xe9 \xc0\xaf \xed\xa0\x80 \xf0\x9f\x98\x80 \xe2\x82");
  EXPECT_EQ(testing::internal::GetCapturedStderr(),
            "dptrain: error: caf\xc3\xa9 caf\\xe9 \\xc0\\xaf \\xed\\xa0\\x80 "
            "\xf0\x9f\x98\x80 \\xe2\\x82\n");
}

}  // namespace
}  // namespace dp
