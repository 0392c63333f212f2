#include "core/input_file.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>

#include "core/error.h"

namespace dp {

namespace {

// The size of a regular file, 0 for anything else (a pipe, a device): one buffer of that size
// (and a byte to see the end) then takes the file, where doubling would hold up to twice it.
size_t regular_file_size(FILE* f) {
  struct stat st {};
  return ::fstat(::fileno(f), &st) == 0 && S_ISREG(st.st_mode) ? size_t(st.st_size) : 0;
}

// read_file_start with `check_start` (if set) called on the first block read.
bool read_start(const std::string& path, size_t max_bytes, std::vector<uint8_t>& bytes,
                const StartCheck& check_start) {
  InputFile f = open_input_file(path);
  if (!f) throw DataError(fmt::format("{}: cannot open: {}", path, std::strerror(errno)));
  bytes.clear();
  const size_t size = regular_file_size(f.get());
  size_t got = 0;
  do {  // 64 KiB first (for check_start), then the whole size, or doubling where it is unknown
    const size_t at = bytes.size();
    const size_t next = at == 0 ? size_t(1) << 16 : std::max(at * 2, size > at ? size + 1 : 0);
    bytes.resize(std::min(next, max_bytes));
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
