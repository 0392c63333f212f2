// SHA-256 against the FIPS 180-2 / NIST example vectors, whole and in odd-sized pieces.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <utility>

#include "core/error.h"
#include "data/sha256.h"
#include "data_fixtures.h"

namespace dp::data {
namespace {

TEST(Sha256, KnownVectors) {
  EXPECT_EQ(sha256_hex("", 0), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abc", 3),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  const std::string two_blocks = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
  EXPECT_EQ(sha256_hex(two_blocks.data(), two_blocks.size()),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

TEST(Sha256, MillionAInOddPieces) {
  const std::string chunk(997, 'a');  // prime-sized updates cross every block boundary
  Sha256 h;
  size_t left = 1000000;
  while (left > 0) {
    size_t n = std::min(left, chunk.size());
    h.update(chunk.data(), n);
    left -= n;
  }
  EXPECT_EQ(h.finish_hex(), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Sha256, PaddingBoundaries) {
  // Lengths around the 55/56/64-byte padding edges must agree with one-shot hashing done
  // byte by byte.
  for (size_t len : {55u, 56u, 57u, 63u, 64u, 65u, 119u, 120u}) {
    std::string s(len, 'x');
    Sha256 h;
    for (char ch : s) h.update(&ch, 1);
    EXPECT_EQ(h.finish_hex(), sha256_hex(s.data(), s.size())) << len;
  }
  // 64 bytes of 'a' (a full block plus a whole padding block), independently known digest.
  std::string a64(64, 'a');
  EXPECT_EQ(sha256_hex(a64.data(), a64.size()),
            "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb");
}

TEST(Sha256, InterleavedStreamsStayIndependent) {
  // Two digests fed in alternation, each in pieces, give each message's own digest.
  const std::string abc = "abc";
  const std::string two_blocks = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
  Sha256 short_message, long_message;
  size_t fed = 0;
  for (size_t i = 0; i < abc.size(); ++i) {
    short_message.update(&abc[i], 1);
    const size_t n = std::min<size_t>(19, two_blocks.size() - fed);
    long_message.update(two_blocks.data() + fed, n);
    fed += n;
  }
  EXPECT_EQ(fed, two_blocks.size());
  Sha256 moved = std::move(long_message);  // the context moves with the object
  EXPECT_EQ(short_message.finish_hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(moved.finish_hex(), "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

TEST(Sha256, UpdateAfterFinishIsAnInternalError) {
  Sha256 h;
  h.update("abc", 3);
  h.finish();
  try {
    h.update("d", 1);
    FAIL() << "update after finish did not throw";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::internal);
  }
}

TEST(Sha256, FileMatchesMemoryAndMissingFileIsDataError) {
  testing::TempDir dir;
  auto bytes = testing::random_bytes(3 << 20, 42);  // spans several 1 MiB reads
  testing::write_file(dir / "blob", bytes);
  EXPECT_EQ(sha256_file(dir / "blob"), sha256_hex(bytes.data(), bytes.size()));
  EXPECT_THROW(sha256_file(dir / "nope"), DataError);
}

}  // namespace
}  // namespace dp::data
