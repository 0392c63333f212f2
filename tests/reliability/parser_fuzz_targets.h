// The bodies of the parser fuzz targets, shared by the libFuzzer executables (fuzz_idx.cpp,
// fuzz_cifar10.cpp, built only by fuzz.sh with clang) and the corpus replay test
// (test_parser_corpus.cpp, a normal CTest test), so every input the fuzzer ever kept or
// crashed on is replayed on every build. A malformed input must end in DataError; an input
// that parses must satisfy the parser's promises, else the target aborts (a fuzzer "crash").
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "core/error.h"
#include "data/image_decode.h"
#include "data/image_resize.h"
#include "data/source_parsers.h"

namespace dp::fuzz {

inline void promise(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "parser broke its promise: %s\n", what);
    std::abort();
  }
}

// First byte picks the IDX kind (even: images, odd: labels); the rest is the file.
inline void idx_one_input(const uint8_t* data, size_t size) {
  if (size == 0) return;
  const uint32_t magic = data[0] % 2 == 0 ? data::kIdxImagesMagic : data::kIdxLabelsMagic;
  try {
    data::IdxArray idx =
        data::parse_idx(std::vector<uint8_t>(data + 1, data + size), magic, "fuzz");
    promise(idx.dims.size() == (magic & 0xff), "one dimension per the magic's rank");
    uint64_t elements = 1;
    for (uint32_t d : idx.dims) elements *= d;
    promise(elements == idx.payload.size(), "payload holds exactly prod(dims) elements");
  } catch (const DataError&) {
  }
}

inline void cifar10_one_input(const uint8_t* data, size_t size) {
  data::RawSplit split;
  try {
    data::parse_cifar10_batch(data, size, "fuzz", split);
    promise(split.count == 10000, "a batch holds 10000 records");
    promise(split.images.size() == size_t(split.count) * 3072, "3072 bytes per image");
    for (uint8_t label : split.labels) promise(label < 10, "labels below 10");
  } catch (const DataError&) {
    promise(split.count == 0 && split.images.empty() && split.labels.empty(),
            "a rejected batch leaves the split untouched");
  }
}

// First byte: bit 0 picks 1 or 3 channels, bit 1 a JPEG draft to 8 pixels, bit 2 a resize
// to 5x5; the rest is the file handed to `pack --format folder`'s decoder.
inline void image_one_input(const uint8_t* data, size_t size) {
  if (size == 0) return;
  const int channels = data[0] & 1 ? 3 : 1;
  try {
    data::DecodedImage image;
    data::decode_image(data + 1, size - 1, channels, "fuzz", image, data[0] & 2 ? 8 : 0);
    promise(image.height > 0 && image.width > 0, "a decoded image has a size");
    promise(image.height * image.width <= data::kMaxImagePixels, "within the pixel limit");
    promise(image.channels == channels, "the channels asked for");
    promise(image.pixels.size() == size_t(image.height * image.width * channels),
            "height * width * channels bytes");
    if (!(data[0] & 2)) {  // the header's size is the decoded one (no draft scaling)
      data::ImageSize header;
      try {
        header = data::read_image_size(data + 1, size - 1, "fuzz");
      } catch (const DataError&) {
        promise(false, "a file that decodes has a readable size");
      }
      promise(header.width == image.width && header.height == image.height,
              "the header's size is the decoded size");
    }
    if (data[0] & 4) {
      const data::DecodedImage small = data::resize_shorter_side_center_crop(image, 5);
      promise(small.pixels.size() == size_t(25 * channels), "a 5x5 crop");
    }
  } catch (const DataError&) {
  }
}

}  // namespace dp::fuzz
