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

}  // namespace
}  // namespace dp
