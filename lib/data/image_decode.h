// Decoding one JPEG or PNG file held in memory into 8-bit channels-last pixels, with Debian's
// libjpeg-turbo (its libjpeg API) and libpng; never a decoder of our own. The result matches
// what Pillow (torchvision's ImageFolder loader) gives for Image.open(f).convert("RGB") or
// .convert("L"), byte for byte, except for 16-bit greyscale PNGs (see decode_image).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace dp::data {

struct DecodedImage {
  int64_t height = 0, width = 0, channels = 0;
  std::vector<uint8_t> pixels;  // height * width * channels, row-major, channels-last
};

// The largest image decoded: Pillow's own decompression-bomb limit (2 * 89478485 pixels).
inline constexpr int64_t kMaxImagePixels = 178956970;

// Decodes `bytes` (a JPEG or PNG file's contents, told apart by their signature, not the file
// name) into `channels` 1 (greyscale) or 3 (RGB) channels:
//  - JPEG: greyscale or YCbCr, baseline or progressive, decoded with libjpeg's defaults
//    (accurate integer IDCT, smooth chroma upsampling), as Pillow's libjpeg-turbo does. CMYK
//    and YCCK JPEGs are refused. A file is truncated where Pillow finds it so (it ends before
//    its last row; a progressive one, before its end marker); libjpeg's warnings about data it
//    recovers from pass, as in Pillow.
//  - PNG: every colour type and bit depth; palettes expanded, alpha and tRNS dropped (not
//    composited, as Pillow's convert("RGB") drops them), 1/2/4-bit greyscale scaled to 0..255,
//    16-bit samples reduced to their high byte (Pillow does that for 16-bit colour; for 16-bit
//    greyscale Pillow's convert clips the value at 255 instead, which keeps almost nothing).
//  - RGB to greyscale with Pillow's ITU-R 601-2 weights in its fixed point
//    ((19595 R + 38470 G + 7471 B + 32768) >> 16); greyscale to RGB repeats the value.
// Throws DataError starting with `name` for anything else: not an image, truncated or corrupt
// data, a zero or over-large size.
DecodedImage decode_image(const uint8_t* bytes, size_t size, int channels, const std::string& name);
// The same into `out`, reusing its pixel storage (a decoding thread keeps one: no page faults
// from a fresh allocation per image). `draft_size` > 0 decodes a JPEG at 1/2, 1/4 or 1/8
// scale in libjpeg's IDCT, the largest that keeps both sides at least draft_size, exactly as
// Pillow's Image.draft("RGB", (draft_size, draft_size)) does (PNGs are decoded whole).
void decode_image(const uint8_t* bytes, size_t size, int channels, const std::string& name,
                  DecodedImage& out, int64_t draft_size = 0);

// Throws decode_image's DataError ("<name>: not a JPEG or PNG image") unless `bytes` start
// with a JPEG's or PNG's signature.
void require_image_signature(const uint8_t* bytes, size_t size, const std::string& name);

// A JPEG's or PNG's width and height from its header alone (no pixels decoded); throws
// DataError starting with `name` where decode_image would refuse the file's header.
struct ImageSize {
  int64_t width = 0, height = 0;
  bool operator==(const ImageSize& o) const { return width == o.width && height == o.height; }
  bool operator<(const ImageSize& o) const {
    return width != o.width ? width < o.width : height < o.height;
  }
};
ImageSize read_image_size(const uint8_t* bytes, size_t size, const std::string& name);

// The two halves of decode_image, for tests and for callers that know the format.
void decode_jpeg(const uint8_t* bytes, size_t size, const std::string& name, DecodedImage& out,
                 int64_t draft_size = 0);
ImageSize read_jpeg_size(const uint8_t* bytes, size_t size, const std::string& name);
void decode_png(const uint8_t* bytes, size_t size, const std::string& name, DecodedImage& out);
// The DataError decode_image throws for an image of no pixels or more than kMaxImagePixels.
void check_image_size(int64_t width, int64_t height, const std::string& name);
// The IDCT scale denominator (1, 2, 4, 8) of a draft decode at draft_size (0: 1).
int draft_denominator(int64_t width, int64_t height, int64_t draft_size);
// Greyscale <-> RGB as described above (a copy when the counts already agree).
DecodedImage convert_channels(DecodedImage image, int channels);

}  // namespace dp::data
