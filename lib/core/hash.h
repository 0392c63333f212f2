// The project's two non-cryptographic hashes, defined once so every user gets the same bits:
//   splitmix64 (Steele, Lea, Flood 2014; Vigna's reference splitmix64.c): the generator behind
//     the initial weights (nn/init) and the seed mixer of the augmentation draws (data/augment);
//   FNV-1a, 64-bit (Fowler, Noll, Vo): stream names into seeds, cache keys, test checksums.
// Initial weights and augmentation are pure functions of the seed through these, so a change
// to any constant here changes every trained result: tests/core/test_hash.cpp pins them to the
// published reference values.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace dp::hash {

inline constexpr uint64_t kSplitmix64Increment = 0x9e3779b97f4a7c15ull;  // 2^64 / golden ratio
inline constexpr uint64_t kFnv1a64OffsetBasis = 0xcbf29ce484222325ull;
inline constexpr uint64_t kFnv1a64Prime = 0x100000001b3ull;

// Advances the generator state by the increment and returns the finalised new state: the
// reference generator's next(). Successive calls from state s give the reference sequence.
constexpr uint64_t splitmix64_next(uint64_t& state) {
  uint64_t z = (state += kSplitmix64Increment);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// The first output of a generator started at `x`, leaving no state behind: a bijective mix of
// one 64-bit value into a well-spread one (used to fold several values into one seed).
constexpr uint64_t splitmix64_mix(uint64_t x) { return splitmix64_next(x); }

// One FNV-1a step: xor `value` into the hash, then multiply by the prime. Over bytes this is
// the standard FNV-1a; over wider fields (one step per field) it is FNV-1a with a word alphabet.
constexpr uint64_t fnv1a64_step(uint64_t hash, uint64_t value) {
  return (hash ^ value) * kFnv1a64Prime;
}

// Standard FNV-1a-64 of a byte string, continuing from `hash` (the offset basis by default).
constexpr uint64_t fnv1a64(std::string_view bytes, uint64_t hash = kFnv1a64OffsetBasis) {
  for (char c : bytes) hash = fnv1a64_step(hash, static_cast<unsigned char>(c));
  return hash;
}

// The same over raw memory (e.g. the bytes of a float array).
inline uint64_t fnv1a64_bytes(const void* data, size_t size, uint64_t hash = kFnv1a64OffsetBasis) {
  const auto* bytes = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < size; ++i) hash = fnv1a64_step(hash, bytes[i]);
  return hash;
}

// The seed of one random stream of a run: `stream` names what it draws ("sampler", ...), and
// (seed, stream, epoch, index) are folded in one at a time through splitmix64's mix, so
// distinct tuples give unrelated seeds (unlike seed + epoch, under which seed s's epoch e+1 is
// seed s+1's epoch e).
constexpr uint64_t derive_seed(uint64_t seed, std::string_view stream, uint64_t epoch,
                               uint64_t index = 0) {
  uint64_t h = splitmix64_mix(seed) ^ fnv1a64(stream);
  h = splitmix64_mix(h) ^ epoch;
  h = splitmix64_mix(h) ^ index;
  return splitmix64_mix(h);
}

}  // namespace dp::hash
