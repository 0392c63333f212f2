// core/hash.h against published reference values: splitmix64 from Vigna's splitmix64.c (the
// sequences from seeds 0 and 1234567, as listed by Rosetta Code's "Pseudo-random
// numbers/Splitmix64"), FNV-1a-64 from the FNV test suite (Fowler, Noll, Vo). Initial weights
// and augmentation draws are functions of these bits, so they must never change.
#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <string>

#include "core/hash.h"

namespace dp::hash {
namespace {

TEST(Splitmix64, SequenceFromSeedZero) {
  uint64_t state = 0;
  const std::array<uint64_t, 4> expected = {0xe220a8397b1dcdafull, 0x6e789e6aa1b965f4ull,
                                            0x06c45d188009454full, 0xf88bb8a8724c81ecull};
  for (uint64_t value : expected) EXPECT_EQ(splitmix64_next(state), value);
}

TEST(Splitmix64, SequenceFromSeed1234567) {
  uint64_t state = 1234567;
  const std::array<uint64_t, 5> expected = {6457827717110365317ull, 3203168211198807973ull,
                                            9817491932198370423ull, 4593380528125082431ull,
                                            16408922859458223821ull};
  for (uint64_t value : expected) EXPECT_EQ(splitmix64_next(state), value);
}

TEST(Splitmix64, MixIsTheFirstOutputAndLeavesNoState) {
  EXPECT_EQ(splitmix64_mix(0), 0xe220a8397b1dcdafull);
  EXPECT_EQ(splitmix64_mix(1234567), 6457827717110365317ull);
  static_assert(splitmix64_mix(0) == 0xe220a8397b1dcdafull, "usable in constant expressions");
}

TEST(Fnv1a64, ReferenceStrings) {
  EXPECT_EQ(fnv1a64(""), 0xcbf29ce484222325ull);
  EXPECT_EQ(fnv1a64("a"), 0xaf63dc4c8601ec8cull);
  EXPECT_EQ(fnv1a64("foobar"), 0x85944171f73967e8ull);
  static_assert(fnv1a64("a") == 0xaf63dc4c8601ec8cull, "usable in constant expressions");
}

TEST(Fnv1a64, BytesAndContinuationAgreeWithTheString) {
  const std::string foobar = "foobar";
  EXPECT_EQ(fnv1a64_bytes(foobar.data(), foobar.size()), 0x85944171f73967e8ull);
  EXPECT_EQ(fnv1a64("bar", fnv1a64("foo")), 0x85944171f73967e8ull);
  EXPECT_EQ(fnv1a64_bytes(nullptr, 0), kFnv1a64OffsetBasis);
}

TEST(Fnv1a64, StepOverWideFieldsXorsTheWholeValue) {
  // One step per 64-bit field (the CPU backend's primitive-cache key): xor, then multiply.
  const uint64_t field = 0x0123456789abcdefull;
  EXPECT_EQ(fnv1a64_step(kFnv1a64OffsetBasis, field),
            (kFnv1a64OffsetBasis ^ field) * kFnv1a64Prime);
  // Bytes below 256 make it the ordinary byte-wise step.
  EXPECT_EQ(fnv1a64_step(kFnv1a64OffsetBasis, 'a'), fnv1a64("a"));
}

}  // namespace
}  // namespace dp::hash
