// JPEG through libjpeg-turbo's libjpeg API, read as Pillow's decoder (torchvision's ImageFolder
// loader) reads it: from memory through a source that suspends at the end of the data rather
// than inventing an end marker, so a file is truncated exactly where Pillow finds it so (it ends
// before the last row; a progressive one, before its end), and libjpeg's warnings about data it
// recovers from (extraneous bytes, a corrupt segment) pass, as Pillow lets them.
#include <algorithm>
#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <vector>

#include "core/error.h"
#include "data/image_decode.h"

// clang-format off: after <cstdio>, as jpeglib.h uses FILE and size_t without including them
#include <jpeglib.h>
// clang-format on

namespace dp::data {
namespace {

// A file of more scans is refused before it is decoded (as TurboJPEG's TJFLAG_LIMITSCANS):
// each scan costs a pass over the image (or a component of it, in a sequential file whose
// scans repeat components), so a small file could take hours.
constexpr int kMaxScans = 500;

// libjpeg reports errors by longjmp: each setjmp'd phase below touches only the C structs, and
// the C++ objects (the reader's owner, the pixel buffer) live in the caller's frame.
struct JpegError {
  jpeg_error_mgr pub;
  jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

[[noreturn]] void error_exit(j_common_ptr cinfo) {
  auto* err = reinterpret_cast<JpegError*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, err->message);
  std::longjmp(err->jump, 1);
}

void no_output(j_common_ptr) {}  // warnings pass silently, as in Pillow

void limit_scans(j_common_ptr cinfo) {
  auto* d = reinterpret_cast<j_decompress_ptr>(cinfo);
  if (d->input_scan_number <= kMaxScans) return;
  auto* err = reinterpret_cast<JpegError*>(cinfo->err);
  std::snprintf(err->message, sizeof err->message, "a JPEG of more than %d scans", kMaxScans);
  std::longjmp(err->jump, 1);
}

// The whole file is in memory: asked for more, the source suspends (libjpeg's calls then return
// "suspended"), which is the end of the data.
void init_source(j_decompress_ptr) {}
boolean fill_input_buffer(j_decompress_ptr) { return FALSE; }
void skip_input_data(j_decompress_ptr cinfo, long count) {
  jpeg_source_mgr* src = cinfo->src;
  const size_t n = count <= 0 ? 0 : std::min(size_t(count), src->bytes_in_buffer);
  src->next_input_byte += n;
  src->bytes_in_buffer -= n;
}
void term_source(j_decompress_ptr) {}

struct JpegReader {
  jpeg_decompress_struct cinfo{};
  JpegError err{};
  jpeg_source_mgr src{};
  jpeg_progress_mgr progress{};
  bool created = false;
  ~JpegReader() {
    if (created) jpeg_destroy_decompress(&cinfo);
  }
};

enum class Phase { done, suspended, failed };

Phase read_header(JpegReader& r, const uint8_t* bytes, size_t size) {
  r.cinfo.err = jpeg_std_error(&r.err.pub);
  r.err.pub.error_exit = error_exit;
  r.err.pub.output_message = no_output;
  if (setjmp(r.err.jump)) return Phase::failed;
  jpeg_create_decompress(&r.cinfo);
  r.created = true;
  r.src = {
      bytes,      size, init_source, fill_input_buffer, skip_input_data, jpeg_resync_to_restart,
      term_source};
  r.cinfo.src = &r.src;
  r.progress.progress_monitor = limit_scans;
  r.cinfo.progress = &r.progress;
  return jpeg_read_header(&r.cinfo, TRUE) == JPEG_HEADER_OK ? Phase::done : Phase::suspended;
}

// Output colour space and scale (1/denominator in the IDCT); the output size follows.
Phase configure(JpegReader& r, bool grey, int denominator) {
  if (setjmp(r.err.jump)) return Phase::failed;
  r.cinfo.out_color_space = grey ? JCS_GRAYSCALE : JCS_RGB;
  r.cinfo.scale_num = 1;
  r.cinfo.scale_denom = unsigned(denominator);
  jpeg_calc_output_dimensions(&r.cinfo);
  return Phase::done;
}

// Libjpeg's defaults, and Pillow's: accurate integer IDCT, smooth chroma upsampling.
// `rows` points at every output row, so that libjpeg writes as many as a call gives straight
// into place (one at a time, it copies through a spare row where it upsamples two at once).
Phase read_rows(JpegReader& r, JSAMPROW* rows) {
  if (setjmp(r.err.jump)) return Phase::failed;
  if (!jpeg_start_decompress(&r.cinfo)) return Phase::suspended;
  while (r.cinfo.output_scanline < r.cinfo.output_height) {
    const JDIMENSION at = r.cinfo.output_scanline;
    if (jpeg_read_scanlines(&r.cinfo, rows + at, r.cinfo.output_height - at) == 0)
      return Phase::suspended;
  }
  return Phase::done;
}

// The rest of the file after the last row, up to its end marker, as Pillow's decoder reads it:
// a marker libjpeg refuses there (a damaged end marker, or one that a damaged byte made inside
// the scan, which ended it early and left the rows that followed grey) fails the file; data that
// ends before the end marker only suspends, and passes (the rows are all there).
Phase finish(JpegReader& r) {
  if (setjmp(r.err.jump)) return Phase::failed;
  return jpeg_finish_decompress(&r.cinfo) ? Phase::done : Phase::suspended;
}

// The header read and checked: a DataError naming the file where it is not a JPEG libjpeg
// reads, ends inside its header, or is CMYK/YCCK.
void read_checked_header(JpegReader& r, const uint8_t* bytes, size_t size,
                         const std::string& name) {
  const Phase header = read_header(r, bytes, size);
  if (header == Phase::failed)
    throw DataError(fmt::format("{}: not a readable JPEG: {}", name, r.err.message));
  if (header == Phase::suspended)
    throw DataError(fmt::format("{}: not a readable JPEG: the file ends in its header", name));
  const J_COLOR_SPACE space = r.cinfo.jpeg_color_space;
  if (space == JCS_CMYK || space == JCS_YCCK)
    throw DataError(fmt::format("{}: CMYK/YCCK JPEG, not supported (convert it to RGB)", name));
}

}  // namespace

ImageSize read_jpeg_size(const uint8_t* bytes, size_t size, const std::string& name) {
  JpegReader r;
  read_checked_header(r, bytes, size, name);
  return {r.cinfo.image_width, r.cinfo.image_height};
}

void decode_jpeg(const uint8_t* bytes, size_t size, const std::string& name, DecodedImage& out,
                 int64_t draft_size) {
  JpegReader r;
  read_checked_header(r, bytes, size, name);
  check_image_size(r.cinfo.image_width, r.cinfo.image_height, name);
  const bool grey = r.cinfo.jpeg_color_space == JCS_GRAYSCALE;
  const int denominator = draft_denominator(r.cinfo.image_width, r.cinfo.image_height, draft_size);
  if (configure(r, grey, denominator) != Phase::done)
    throw DataError(fmt::format("{}: not a readable JPEG: {}", name, r.err.message));
  out.height = r.cinfo.output_height;
  out.width = r.cinfo.output_width;
  out.channels = grey ? 1 : 3;
  const size_t row_bytes = size_t(out.width) * size_t(out.channels);
  out.pixels.resize(row_bytes * size_t(out.height));
  std::vector<JSAMPROW> row_pointers(size_t(out.height));
  for (size_t y = 0; y < row_pointers.size(); ++y) row_pointers[y] = &out.pixels[y * row_bytes];
  const Phase rows = read_rows(r, row_pointers.data());
  if (rows == Phase::failed)
    throw DataError(fmt::format("{}: corrupt JPEG: {}", name, r.err.message));
  if (rows == Phase::suspended)
    throw DataError(fmt::format("{}: truncated JPEG: the file ends before its last row{}", name,
                                r.cinfo.progressive_mode ? " or scan" : ""));
  if (finish(r) == Phase::failed)
    throw DataError(fmt::format("{}: corrupt JPEG: {}", name, r.err.message));
}

}  // namespace dp::data
