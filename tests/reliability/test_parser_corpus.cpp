// Replays every input kept under tests/reliability/corpus/ (fuzzer seeds and every input that
// once crashed a parser) through the same target bodies the libFuzzer executables run, with
// the regular build: a parser regression fails CTest, not only a fuzzing session. Plus the
// cases behind those inputs, checked for their exact outcome.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>

#include "core/hash.h"
#include "parser_fuzz_targets.h"

namespace {

std::vector<uint8_t> read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

size_t replay(const std::string& kind, void (*target)(const uint8_t*, size_t)) {
  size_t count = 0;
  for (const auto& entry :
       std::filesystem::directory_iterator(std::string(DP_CORPUS_DIR) + "/" + kind)) {
    SCOPED_TRACE(entry.path().string());
    const std::vector<uint8_t> bytes = read_file(entry.path());
    target(bytes.data(), bytes.size());  // aborts on a broken promise
    ++count;
  }
  return count;
}

TEST(ParserCorpus, IdxInputsReplay) { EXPECT_GE(replay("idx", dp::fuzz::idx_one_input), 6u); }

TEST(ParserCorpus, Cifar10InputsReplay) {
  EXPECT_GE(replay("cifar10", dp::fuzz::cifar10_one_input), 2u);
}

TEST(ParserCorpus, ImageInputsReplay) {
  EXPECT_GE(replay("image", dp::fuzz::image_one_input), 8u);
}

// Every prefix of each image seed (a truncated file) and 300 single-byte corruptions of it
// keep the decoder's promises: a DataError or a consistent image, never a crash or a hang.
TEST(ImageDecoder, TruncatedAndCorruptedSeedsKeepThePromises) {
  size_t inputs = 0;
  for (const auto& entry :
       std::filesystem::directory_iterator(std::string(DP_CORPUS_DIR) + "/image")) {
    SCOPED_TRACE(entry.path().string());
    std::vector<uint8_t> bytes = read_file(entry.path());
    for (size_t n = 0; n <= bytes.size(); ++n, ++inputs)
      dp::fuzz::image_one_input(bytes.data(), n);
    uint64_t state = 19;
    for (int i = 0; i < 300 && bytes.size() > 1; ++i, ++inputs) {
      std::vector<uint8_t> broken = bytes;
      const uint64_t r = dp::hash::splitmix64_next(state);
      broken[1 + r % (broken.size() - 1)] ^= uint8_t(1 + (r >> 32) % 255);
      dp::fuzz::image_one_input(broken.data(), broken.size());
    }
  }
  EXPECT_GT(inputs, 1000u);
}

TEST(IdxParser, DimensionProductThatWrapsIsRefused) {
  // 65536 x 2^24 x 2^24 = 2^64 wraps to 0, which once matched the empty payload.
  std::vector<uint8_t> bytes = {0, 0, 8, 3, 0, 1, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0};
  try {
    dp::data::parse_idx(bytes, dp::data::kIdxImagesMagic, "wrapped.idx");
    FAIL() << "accepted";
  } catch (const dp::DataError& e) {
    EXPECT_NE(std::string(e.what()).find("wrapped.idx: holds 16 bytes"), std::string::npos)
        << e.what();
  }
}

TEST(IdxParser, BadMagicNamesTheFile) {
  std::vector<uint8_t> bytes = {0, 0, 8, 1, 0, 0, 0, 1, 7};
  EXPECT_THROW(
      {
        try {
          dp::data::parse_idx(bytes, dp::data::kIdxImagesMagic, "t10k-images-idx3-ubyte");
        } catch (const dp::DataError& e) {
          EXPECT_STREQ(
              e.what(),
              "t10k-images-idx3-ubyte: bad IDX magic number 0x00000801, expected 0x00000803");
          throw;
        }
      },
      dp::DataError);
}

TEST(Cifar10Parser, ValidBatchParsesAndBadLabelLeavesSplitUntouched) {
  std::vector<uint8_t> batch(10000 * 3073);
  for (size_t r = 0; r < 10000; ++r) {
    batch[r * 3073] = uint8_t(r % 10);
    batch[r * 3073 + 1] = 200;  // R plane, pixel 0
  }
  dp::data::RawSplit split;
  dp::data::parse_cifar10_batch(batch.data(), batch.size(), "data_batch_1.bin", split);
  ASSERT_EQ(split.count, 10000);
  EXPECT_EQ(split.labels[9999], 9);
  EXPECT_EQ(split.images[0], 200);  // channels-last: pixel 0's R
  EXPECT_EQ(split.images[1], 0);

  batch[9999 * 3073] = 10;
  EXPECT_THROW(dp::data::parse_cifar10_batch(batch.data(), batch.size(), "b.bin", split),
               dp::DataError);
  EXPECT_EQ(split.count, 10000);
  EXPECT_EQ(split.labels.size(), 10000u);
  EXPECT_EQ(split.images.size(), 10000u * 3072);
}

TEST(Cifar10Parser, WrongSizeNamesTheFile) {
  std::vector<uint8_t> batch(3073 * 10 + 5);
  dp::data::RawSplit split;
  try {
    dp::data::parse_cifar10_batch(batch.data(), batch.size(), "data_batch_2.bin", split);
    FAIL() << "accepted";
  } catch (const dp::DataError& e) {
    EXPECT_NE(std::string(e.what()).find("data_batch_2.bin: size 30735 bytes is not a multiple"),
              std::string::npos)
        << e.what();
  }
}

}  // namespace
