#include "core/input_file.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>

#include "core/error.h"

namespace dp {

namespace {

// read_file_start with `check_start` (if set) called on the first block read.
bool read_start(const std::string& path, size_t max_bytes, std::vector<uint8_t>& bytes,
                const StartCheck& check_start) {
  InputFile f = open_input_file(path);
  if (!f) throw DataError(fmt::format("{}: cannot open: {}", path, std::strerror(errno)));
  bytes.clear();
  size_t got = 0;
  do {  // the buffer doubles from 64 KiB: a few reads for any image, no size query
    const size_t at = bytes.size();
    bytes.resize(std::min(std::max<size_t>(at * 2, 1 << 16), max_bytes));
    got = std::fread(bytes.data() + at, 1, bytes.size() - at, f.get());
    bytes.resize(at + got);
    if (at == 0 && check_start) check_start(bytes);
  } while (got > 0 && bytes.size() < max_bytes && !std::feof(f.get()));
  if (std::ferror(f.get())) throw DataError(fmt::format("{}: read failed", path));
  if (bytes.size() < max_bytes) return true;
  const bool at_end = std::fgetc(f.get()) == EOF;
  if (std::ferror(f.get())) throw DataError(fmt::format("{}: read failed", path));
  return at_end;
}

}  // namespace

bool read_file_start(const std::string& path, size_t max_bytes, std::vector<uint8_t>& bytes) {
  return read_start(path, max_bytes, bytes, {});
}

void read_whole_file(const std::string& path, std::vector<uint8_t>& bytes,
                     const StartCheck& check_start) {
  read_start(path, std::numeric_limits<size_t>::max(), bytes, check_start);
}

}  // namespace dp
