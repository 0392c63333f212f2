// core/utf8.h: file names as Python decodes and sorts them, and text escaped to one line.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "core/utf8.h"

namespace dp::utf8 {
namespace {

// Python: os.fsdecode(b"x\x80\xc3\xa9\xed\xa0\x80\xe2\x82A") == "x\udc80\xe9\udced\udca0\udc80\udce2\udc82A"
// (an encoded surrogate and a cut sequence are bytes that do not decode, each escaped alone).
TEST(Utf8, PythonCodePointsEscapeEachByteThatDoesNotDecode) {
  EXPECT_EQ(python_code_points("x\x80\xc3\xa9\xed\xa0\x80\xe2\x82" "A"),
            std::u32string({U'x', 0xdc80, 0xe9, 0xdced, 0xdca0, 0xdc80, 0xdce2, 0xdc82, U'A'}));
  EXPECT_EQ(python_code_points("\xe2\x82\xac\xf0\x9f\x98\x80"), std::u32string({0x20ac, 0x1f600}));
}

// sorted([b"x\x80", "xé".encode(), b"x\xff", "x😀".encode(), b"xa"], key=os.fsdecode) is
// xa, xé, x\x80, x\xff, x😀: bytes that do not decode sort between U+D7FF and U+E000.
TEST(Utf8, NamesSortAsPythonSortsThem) {
  std::vector<std::string> names = {"x\x80", "x\xc3\xa9", "x\xff", "x\xf0\x9f\x98\x80", "xa"};
  std::sort(names.begin(), names.end(), [](const std::string& a, const std::string& b) {
    return python_code_points(a) < python_code_points(b);
  });
  EXPECT_EQ(names, (std::vector<std::string>{"xa", "x\xc3\xa9", "x\x80", "x\xff",
                                             "x\xf0\x9f\x98\x80"}));
}

// One line wherever it is read: Python's str.splitlines breaks at C1's U+0085 and at U+2028/9.
TEST(Utf8, EscapedTextIsOneLine) {
  EXPECT_EQ(escaped("a\nb\x1b\x7f"), "a\\nb\\x1b\\x7f");
  EXPECT_EQ(escaped("a\xc2\x85" "b\xe2\x80\xa8" "c\xe2\x80\xa9"), "a\\u0085b\\u2028c\\u2029");
  EXPECT_EQ(escaped("caf\xc3\xa9 \xff"), "caf\xc3\xa9 \\xff");  // é kept, a stray byte escaped
  EXPECT_TRUE(valid("caf\xc3\xa9"));
  EXPECT_FALSE(valid("\xed\xa0\x80"));  // a surrogate
}

}  // namespace
}  // namespace dp::utf8
