// Reads MNIST-style IDX files (MNIST, Fashion-MNIST), plain or gzip-compressed. zlib's gzread
// passes uncompressed files through unchanged, so one reader serves both.
#include <zlib.h>

#include <algorithm>
#include <filesystem>
#include <memory>

#include "core/error.h"
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
  throw DataError(fmt::format("{}: IDX file not found (nor {}.gz)", plain.string(), stem));
}

std::vector<uint8_t> read_decompressed(const std::string& path) {
  std::unique_ptr<gzFile_s, int (*)(gzFile)> f(gzopen(path.c_str(), "rb"), gzclose);
  if (!f) throw DataError(fmt::format("{}: cannot open for reading", path));
  gzbuffer(f.get(), 1 << 20);
  std::vector<uint8_t> bytes;
  size_t used = 0;
  while (true) {
    if (bytes.size() - used < (1 << 20)) bytes.resize(std::max<size_t>(bytes.size() * 2, 1 << 22));
    // zlib refuses a request above INT_MAX: files past 2 GiB are read a gigabyte at a time.
    const size_t request = std::min<size_t>(bytes.size() - used, size_t{1} << 30);
    const int n = gzread(f.get(), bytes.data() + used, static_cast<unsigned>(request));
    if (n < 0) {
      int code = 0;
      throw DataError(fmt::format("{}: decompression failed: {}", path, gzerror(f.get(), &code)));
    }
    if (n == 0) break;
    used += n;
  }
  int code = 0;
  const char* message = gzerror(f.get(), &code);
  if (code != Z_OK && code != Z_STREAM_END)
    throw DataError(fmt::format("{}: decompression failed: {}", path, message));
  bytes.resize(used);
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
