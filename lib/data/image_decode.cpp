// PNG through libpng's classic API (its simplified API treats 16-bit samples as linear light and
// composites alpha, which Pillow does not), greyscale <-> RGB, and the dispatch by signature
// (JPEG: jpeg_decode.cpp).
#include "data/image_decode.h"

#include <png.h>

#include <algorithm>
#include <csetjmp>
#include <cstdint>
#include <cstdio>
#include <cstring>

#include "core/error.h"

namespace dp::data {

void check_image_size(int64_t width, int64_t height, const std::string& name) {
  if (width <= 0 || height <= 0)
    throw DataError(fmt::format("{}: image of size {}x{}", name, width, height));
  if (width * height > kMaxImagePixels)
    throw DataError(fmt::format("{}: {}x{} pixels, more than the {} decoded at most", name, width,
                                height, kMaxImagePixels));
}

namespace {

// ---------------------------------------------------------------- PNG
// libpng reports errors by longjmp: each setjmp'd phase below touches only plain data, and
// the C++ objects (the structs' owner, the pixel buffer) live in the caller's frame.

struct PngInput {
  const uint8_t* bytes;
  size_t size, offset;
  char message[256];
  png_uint_32 height = 0;  // with `interlaced`, set once the header is read: see rows_done
  bool interlaced = false;
  bool ran_out = false;  // the error: a read past the end of the file
  // How far libpng had read when its rows were done (the first read after them starts there).
  size_t read_at_rows_done = SIZE_MAX;
  // The error came once every row was decoded, from data that is missing (the file ends, or
  // its image data chunks end before their zlib stream does): Pillow, which stops at the last
  // row, has read the image. Data present but wrong (a zlib checksum) still fails it.
  bool missing_after_rows = false;
};

// Whether libpng is past the last row: its row counter reaches the height after the last row
// of a plain image; an interlaced one's pass counter reaches 7 after its last pass.
bool rows_done(png_const_structrp png, const PngInput& in) {
  if (in.height == 0) return false;  // still in the header
  return in.interlaced ? png_get_current_pass_number(png) >= 7
                       : png_get_current_row_number(png) >= in.height;
}

void png_read_from_memory(png_structp png, png_bytep out, png_size_t count) {
  auto* in = static_cast<PngInput*>(png_get_io_ptr(png));
  if (in->read_at_rows_done == SIZE_MAX && rows_done(png, *in)) in->read_at_rows_done = in->offset;
  if (count > in->size - in->offset) {
    in->ran_out = true;
    png_error(png, "truncated file (read past its end)");
  }
  std::memcpy(out, in->bytes + in->offset, count);
  in->offset += count;
}

void png_error_to_message(png_structp png, png_const_charp message) {
  auto* in = static_cast<PngInput*>(png_get_error_ptr(png));
  std::snprintf(in->message, sizeof(in->message), "%s", message);
  const bool missing = in->ran_out || std::strcmp(message, "Not enough image data") == 0;
  in->missing_after_rows = missing && rows_done(png, *in);
  png_longjmp(png, 1);
}

void png_ignore_warning(png_structp, png_const_charp) {}

// A libpng reader whose errors land in `in`'s message.
struct PngStructs {
  png_structp png = nullptr;
  png_infop info = nullptr;
  explicit PngStructs(PngInput& in) {
    png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &in, png_error_to_message,
                                 png_ignore_warning);
    if (png) info = png_create_info_struct(png);
    if (!png || !info) {
      png_destroy_read_struct(&png, info ? &info : nullptr, nullptr);
      throw Error(ExitCode::internal, "libpng: cannot create a reader");
    }
  }
  ~PngStructs() { png_destroy_read_struct(&png, info ? &info : nullptr, nullptr); }
  PngStructs(const PngStructs&) = delete;
  PngStructs& operator=(const PngStructs&) = delete;
};

// Reads the header and sets the transformations to 8-bit grey or RGB without alpha. Returns
// false (message in `in`) on a libpng error.
bool png_read_header(PngStructs& s, PngInput& in, png_uint_32& width, png_uint_32& height,
                     int& channels) {
  if (setjmp(png_jmpbuf(s.png))) return false;
  png_set_read_fn(s.png, &in, png_read_from_memory);
  // A CRC error in a chunk before the pixels is an error, whatever the chunk (libpng only warns
  // about ancillary ones, then drops them; Pillow refuses the file). png_read_pixels relaxes
  // this for the image data, as Pillow does.
  png_set_crc_action(s.png, PNG_CRC_ERROR_QUIT, PNG_CRC_ERROR_QUIT);
  // libpng's default limit is 1,000,000 pixels a side; check_size applies Pillow's limit on
  // the area instead.
  png_set_user_limits(s.png, PNG_UINT_31_MAX, PNG_UINT_31_MAX);
  png_read_info(s.png, s.info);
  width = png_get_image_width(s.png, s.info);
  height = png_get_image_height(s.png, s.info);
  // palette -> RGB, 1/2/4-bit grey -> 8-bit, tRNS -> alpha (then stripped with the rest).
  png_set_expand(s.png);
  png_set_strip_16(s.png);  // the high byte of each 16-bit sample
  png_set_strip_alpha(s.png);
  in.interlaced = png_set_interlace_handling(s.png) > 1;
  png_read_update_info(s.png, s.info);
  channels = png_get_channels(s.png, s.info);
  in.height = height;
  return true;
}

struct PngHeader {
  png_uint_32 width = 0, height = 0;
  int channels = 0;  // after the transformations: 1 or 3
};

// png_read_header, or a DataError naming the file.
PngHeader read_png_header(PngStructs& s, PngInput& in, const std::string& name) {
  PngHeader h;
  if (!png_read_header(s, in, h.width, h.height, h.channels))
    throw DataError(fmt::format("{}: not a readable PNG: {}", name, in.message));
  return h;
}

// Pillow reads what ImageFolder loads without checking the CRCs of the image data chunks, nor
// any chunk after them (IEND may be missing), nor anything missing after the last row: so
// here too. Damaged image data still fails zlib's own checksum, which libpng checks as the
// last row ends the stream.
bool png_read_pixels(PngStructs& s, PngInput& in, png_bytep* rows) {
  if (setjmp(png_jmpbuf(s.png))) return in.missing_after_rows;
  png_set_crc_action(s.png, PNG_CRC_QUIET_USE, PNG_CRC_QUIET_USE);
  png_read_image(s.png, rows);
  return true;
}

// One pass of libpng over `in`'s file into `out`, reading the image data `idat_block` bytes at a
// time (0: libpng's default); false where it fails, the reason in `in`.
bool png_decode_pass(const std::string& name, PngInput& in, size_t idat_block, DecodedImage& out) {
  PngStructs s(in);
  const auto [width, height, channels] = read_png_header(s, in, name);
  check_image_size(width, height, name);
  DP_CHECK(channels == 1 || channels == 3, "{}: libpng gave {} channels", name, channels);
  if (idat_block > 0) png_set_compression_buffer_size(s.png, idat_block);  // on a reader: this
  out.height = height;
  out.width = width;
  out.channels = channels;
  out.pixels.resize(size_t(width) * height * channels);
  std::vector<png_bytep> rows(height);
  for (png_uint_32 y = 0; y < height; ++y)
    rows[y] = out.pixels.data() + size_t(y) * width * channels;
  return png_read_pixels(s, in, rows.data());
}

uint32_t big_endian_32(const uint8_t* p) {
  return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | uint32_t(p[3]);
}

// Pillow reads on after the last row (PngImageFile.load_end): the rest of the chunk that held
// it, then chunk after chunk up to IEND, each chunk's data whole or the file refused; a short
// header, or one whose name is not four letters, digits or '_', ends the reading, and so does an
// animated PNG's next frame (fcTL where acTL gave more than one frame). `read_at` is how far
// the last row took libpng (into the chunk that held it). Returns "" or the problem.
std::string chunk_cut_after_rows(const uint8_t* bytes, size_t size, size_t read_at) {
  size_t pos = 8, end = 8;  // after the signature
  bool animated = false;
  for (; pos + 8 <= size; pos = end) {  // to the end of the chunk that held the last row
    end = pos + 12 + size_t(big_endian_32(bytes + pos));
    if (std::memcmp(bytes + pos + 4, "acTL", 4) == 0 && pos + 12 <= size)
      animated = big_endian_32(bytes + pos + 8) > 1;
    if (end >= read_at) break;
  }
  const auto letter = [](uint8_t c) {  // Python's \w on bytes
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
  };
  for (pos = end; pos + 8 <= size; pos += 12 + size_t(big_endian_32(bytes + pos))) {
    const uint8_t* name = bytes + pos + 4;
    if (!std::all_of(name, name + 4, letter) || std::memcmp(name, "IEND", 4) == 0 ||
        (animated && std::memcmp(name, "fcTL", 4) == 0))
      return "";
    if (big_endian_32(bytes + pos) > size - pos - 8)
      return fmt::format("truncated file (its {} chunk after the image data is cut short)",
                         std::string(reinterpret_cast<const char*>(name), 4));
  }
  return "";
}

}  // namespace

// Pillow's JpegImageFile.draft: scale = min(W // size, H // size), then the largest of 8, 4,
// 2, 1 not above it; the decoded size is ceil(W / s) x ceil(H / s) (libjpeg's rounding).
int draft_denominator(int64_t width, int64_t height, int64_t draft_size) {
  if (draft_size <= 0) return 1;
  const int64_t scale = std::min(width / draft_size, height / draft_size);
  for (int s : {8, 4, 2})
    if (scale >= s) return s;
  return 1;
}

void decode_png(const uint8_t* bytes, size_t size, const std::string& name, DecodedImage& out) {
  // libpng reads the image data in blocks, so a file that ends inside the block holding its
  // last rows fails before they are decoded, where Pillow has them. Such a file is read again
  // a byte at a time: then the end is met only where a row needs bytes that are not there.
  PngInput in{bytes, size, 0, {0}};
  bool decoded = png_decode_pass(name, in, 0, out);
  if (!decoded && in.ran_out) {
    in = PngInput{bytes, size, 0, {0}};
    decoded = png_decode_pass(name, in, 1, out);
  }
  if (!decoded) throw DataError(fmt::format("{}: corrupt or truncated PNG: {}", name, in.message));
  const size_t read_at = in.read_at_rows_done == SIZE_MAX ? in.offset : in.read_at_rows_done;
  if (const std::string cut = chunk_cut_after_rows(bytes, size, read_at); !cut.empty())
    throw DataError(fmt::format("{}: corrupt or truncated PNG: {}", name, cut));
}

DecodedImage convert_channels(DecodedImage image, int channels) {
  if (image.channels == channels) return image;
  const size_t n = size_t(image.height) * image.width;
  std::vector<uint8_t> out(n * channels);
  const uint8_t* in = image.pixels.data();
  if (channels == 3) {  // grey -> RGB
    for (size_t i = 0; i < n; ++i) out[3 * i] = out[3 * i + 1] = out[3 * i + 2] = in[i];
  } else {  // RGB -> grey, Pillow's L = R*299/1000 + G*587/1000 + B*114/1000 in 16.16 fixed point
    for (size_t i = 0; i < n; ++i)
      out[i] = uint8_t((in[3 * i] * 19595u + in[3 * i + 1] * 38470u + in[3 * i + 2] * 7471u +
                        0x8000u) >> 16);
  }
  image.pixels = std::move(out);
  image.channels = channels;
  return image;
}

namespace {
bool is_png(const uint8_t* bytes, size_t size) {
  static const uint8_t kPng[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  return size >= 8 && std::memcmp(bytes, kPng, 8) == 0;
}
bool is_jpeg(const uint8_t* bytes, size_t size) {
  return size >= 3 && bytes[0] == 0xff && bytes[1] == 0xd8 && bytes[2] == 0xff;
}
}  // namespace

void require_image_signature(const uint8_t* bytes, size_t size, const std::string& name) {
  if (!is_png(bytes, size) && !is_jpeg(bytes, size))
    throw DataError(fmt::format("{}: not a JPEG or PNG image", name));
}

ImageSize read_image_size(const uint8_t* bytes, size_t size, const std::string& name) {
  ImageSize s;
  if (is_jpeg(bytes, size)) {
    s = read_jpeg_size(bytes, size, name);
  } else if (is_png(bytes, size)) {
    PngInput in{bytes, size, 0, {0}};
    PngStructs p(in);
    const PngHeader h = read_png_header(p, in, name);
    s = {h.width, h.height};
  } else {
    require_image_signature(bytes, size, name);  // throws
  }
  check_image_size(s.width, s.height, name);
  return s;
}

void decode_image(const uint8_t* bytes, size_t size, int channels, const std::string& name,
                  DecodedImage& out, int64_t draft_size) {
  DP_CHECK(channels == 1 || channels == 3, "decode_image: {} channels", channels);
  if (is_png(bytes, size))
    decode_png(bytes, size, name, out);
  else if (is_jpeg(bytes, size))
    decode_jpeg(bytes, size, name, out, draft_size);
  else
    require_image_signature(bytes, size, name);  // throws
  if (out.channels != channels) out = convert_channels(std::move(out), channels);
}

DecodedImage decode_image(const uint8_t* bytes, size_t size, int channels,
                          const std::string& name) {
  DecodedImage out;
  decode_image(bytes, size, channels, name, out);
  return out;
}

}  // namespace dp::data
