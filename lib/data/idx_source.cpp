// Reads MNIST-style IDX files (MNIST, Fashion-MNIST), plain or gzip-compressed (zlib's inflate).
#include <zlib.h>

#include <algorithm>
#include <filesystem>
#include <memory>

#include "core/error.h"
#include "core/input_file.h"
#include "core/log.h"
#include "data/raw_dataset.h"
#include "data/sha256.h"
#include "data/source_parsers.h"

namespace dp::data {
namespace {

struct IdxFile {
  std::string path;  // as found (with .gz when compressed)
  std::vector<uint32_t> dims;
  std::vector<uint8_t> payload;  // the data after the header
};

// The file `stem` or `stem.gz` in `dir`, preferring the uncompressed one (said in the log
// where both are there: they may differ).
std::string locate(const std::filesystem::path& dir, const std::string& stem) {
  std::error_code ec;
  const auto plain = dir / stem, compressed = dir / (stem + ".gz");
  const bool has_plain = std::filesystem::is_regular_file(plain, ec);
  const bool has_compressed = std::filesystem::is_regular_file(compressed, ec);
  if (has_plain && has_compressed)
    log::info("note: {} and {}.gz are both there: packing {} (the file's sources name it)",
              plain.string(), stem, stem);
  if (has_plain) return plain.string();
  if (has_compressed) return compressed.string();
  for (const auto& path : {plain, compressed})
    if (std::filesystem::exists(path, ec))  // a folder, a pipe... where the file should be
      throw DataError(
          fmt::format("{}: not a regular file, where the IDX file should be", path.string()));
  throw DataError(fmt::format("{}: IDX file not found (nor {}.gz)", plain.string(), stem));
}

bool gzip_member_at(const std::vector<uint8_t>& bytes, size_t at) {
  return bytes.size() - at >= 2 && bytes[at] == 0x1f && bytes[at + 1] == 0x8b;
}

// Inflates the gzip member of `in` that starts at `at` onto `out` (its first `used` bytes
// kept; `used` advanced); returns where the member ends. A member cut short is refused.
size_t inflate_member(const std::vector<uint8_t>& in, size_t at, std::vector<uint8_t>& out,
                      size_t& used, const std::string& path) {
  z_stream z{};
  if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK)  // 16: a gzip header and trailer
    throw DataError(fmt::format("{}: zlib could not start inflating", path));
  const std::unique_ptr<z_stream, int (*)(z_streamp)> end(&z, inflateEnd);
  const uint8_t* next = in.data() + at;
  while (true) {
    if (out.size() - used < (1 << 20)) out.resize(std::max<size_t>(out.size() * 2, 1 << 22));
    // zlib counts in 32 bits: more than 4 GiB in or out is given a gigabyte at a time.
    const size_t in_left = in.size() - (next - in.data());
    z.next_in = const_cast<Bytef*>(next);
    z.avail_in = static_cast<uInt>(std::min<size_t>(in_left, size_t{1} << 30));
    z.next_out = out.data() + used;
    z.avail_out = static_cast<uInt>(std::min<size_t>(out.size() - used, size_t{1} << 30));
    const uInt room = z.avail_out;
    const int code = inflate(&z, Z_NO_FLUSH);
    used += room - z.avail_out;
    next = z.next_in;
    if (code == Z_STREAM_END) return next - in.data();
    if (code == Z_BUF_ERROR && in_left == 0)
      throw DataError(
          fmt::format("{}: truncated gzip stream (it ends before its end marker)", path));
    if (code != Z_OK && code != Z_BUF_ERROR)
      throw DataError(fmt::format("{}: decompression failed: {}", path,
                                  z.msg != nullptr ? z.msg : zError(code)));
  }
}

// A gzip file read as gzip(1) and Python's gzip module read one: member after member (files
// concatenated with cat are one stream), zero bytes after a member as padding, and anything
// else after one refused (zlib's gzread would drop it without a word).
std::vector<uint8_t> gunzip(const std::vector<uint8_t>& in, const std::string& path) {
  std::vector<uint8_t> out;
  size_t used = 0, at = 0;
  do {
    at = inflate_member(in, at, out, used, path);
    while (at < in.size() && in[at] == 0) ++at;
    if (at < in.size() && !gzip_member_at(in, at))
      throw DataError(fmt::format(
          "{}: {} bytes after the gzip stream that are neither padding nor another gzip member "
          "(a damaged or appended file)",
          path, in.size() - at));
  } while (at < in.size());
  out.resize(used);
  return out;
}

// The file's bytes, inflated where it is gzip-compressed (an IDX file begins with zeros, a
// gzip one with 1f 8b, whatever the name says).
std::vector<uint8_t> read_decompressed(const std::string& path) {
  std::vector<uint8_t> bytes;
  read_whole_file(path, bytes);
  if (bytes.empty()) throw DataError(fmt::format("{}: empty file (0 bytes)", path));
  if (gzip_member_at(bytes, 0)) return gunzip(bytes, path);
  return bytes;
}

uint32_t big_endian_u32(const uint8_t* p) {
  return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | uint32_t(p[3]);
}

IdxFile read_idx(const std::string& path, uint32_t magic, RawDataset& out) {
  IdxArray parsed = parse_idx(read_decompressed(path), magic, path);
  out.sources.emplace_back(std::filesystem::path(path).filename().string(), sha256_file(path));
  return {path, std::move(parsed.dims), std::move(parsed.payload)};
}

RawSplit read_split(const std::filesystem::path& dir, const std::string& prefix, size_t num_classes,
                    RawDataset& out) {
  IdxFile images = read_idx(locate(dir, prefix + "-images-idx3-ubyte"), kIdxImagesMagic, out);
  IdxFile labels = read_idx(locate(dir, prefix + "-labels-idx1-ubyte"), kIdxLabelsMagic, out);
  if (images.dims[0] != labels.dims[0])
    throw DataError(fmt::format("{}: holds {} images but {} holds {} labels", images.path,
                                images.dims[0], labels.path, labels.dims[0]));
  if (images.dims[0] == 0 || images.dims[1] == 0 || images.dims[2] == 0)
    throw DataError(fmt::format("{}: holds no images ({} of {}x{})", images.path, images.dims[0],
                                images.dims[1], images.dims[2]));
  if (out.height == 0) {
    out.height = images.dims[1];
    out.width = images.dims[2];
  } else if (out.height != images.dims[1] || out.width != images.dims[2]) {
    throw DataError(fmt::format("{}: images are {}x{}, the other split's are {}x{}", images.path,
                                images.dims[1], images.dims[2], out.height, out.width));
  }
  for (size_t i = 0; i < labels.payload.size(); ++i)
    if (labels.payload[i] >= num_classes)
      throw DataError(fmt::format("{}: record {} has label {} (expected < {})", labels.path, i,
                                  labels.payload[i], num_classes));
  RawSplit split;
  split.count = images.dims[0];
  split.images = std::move(images.payload);  // (N, H, W) is already (N, H, W, 1)
  split.labels = std::move(labels.payload);
  return split;
}

}  // namespace

IdxArray parse_idx(std::vector<uint8_t> bytes, uint32_t magic, const std::string& name) {
  if (bytes.size() < 4 || big_endian_u32(bytes.data()) != magic)
    throw DataError(fmt::format("{}: bad IDX magic number {:#010x}, expected {:#010x}", name,
                                bytes.size() < 4 ? 0u : big_endian_u32(bytes.data()), magic));
  const size_t rank = magic & 0xff;
  const size_t header = 4 + 4 * rank;
  if (bytes.size() < header)
    throw DataError(fmt::format("{}: truncated IDX header ({} bytes)", name, bytes.size()));
  IdxArray idx;
  // The element count must not wrap: three u32 dimensions can multiply past 2^64, and a
  // wrapped product could match the file size while the dimensions promise far more.
  uint64_t elements = 1;
  bool overflow = false;
  for (size_t i = 0; i < rank; ++i) {
    idx.dims.push_back(big_endian_u32(bytes.data() + 4 + 4 * i));
    overflow = overflow || __builtin_mul_overflow(elements, uint64_t(idx.dims.back()), &elements);
  }
  if (overflow || elements != bytes.size() - header)
    throw DataError(
        fmt::format("{}: holds {} bytes, its header promises {} (truncated or trailing data)",
                    name, bytes.size(),
                    overflow ? std::string("more than 2^64") : std::to_string(header + elements)));
  bytes.erase(bytes.begin(), bytes.begin() + header);
  idx.payload = std::move(bytes);
  return idx;
}

RawDataset read_idx_dataset(const std::string& dir, const std::string& name,
                            const std::vector<std::string>& class_names) {
  RawDataset out;
  out.name = name;
  out.class_names = class_names;
  out.channels = 1;
  out.train = read_split(dir, "train", class_names.size(), out);
  out.test = read_split(dir, "t10k", class_names.size(), out);
  return out;
}

}  // namespace dp::data
