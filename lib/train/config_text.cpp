#include "train/config_text.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <linux/magic.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>

#include "core/error.h"
#include "core/unique_fd.h"

namespace dp {
namespace {

[[noreturn]] void refuse(const std::string& file, const std::string& why) {
  throw UsageError(fmt::format("option --config: cannot read '{}' ({})", file, why));
}

// Reads `fd` to its end with blocking reads (a file, or a pipe whose writer exists).
std::string read_to_end(int fd, const std::string& file) {
  std::string text;
  char buffer[4096];
  for (;;) {
    const ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n == 0) return text;
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) refuse(file, std::strerror(errno));
    text.append(buffer, static_cast<size_t>(n));
  }
}

// Reads the non-blocking named pipe `fd` to its end (its writer closed it after writing), all
// within kNamedPipeSeconds. Before any writer came, a read returns 0 as at the end: only a
// poll that reported the pipe ready (data, or a writer gone) lets a 0 count as the end.
std::string read_named_pipe(int fd, const std::string& file) {
  using Clock = std::chrono::steady_clock;
  const auto deadline = Clock::now() + std::chrono::seconds(kNamedPipeSeconds);
  std::string text;
  char buffer[4096];
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline -
                                                                            Clock::now());
    pollfd ready{fd, POLLIN, 0};
    const int got = ::poll(&ready, 1, static_cast<int>(std::max<int64_t>(left.count(), 0)));
    if (got < 0 && errno == EINTR) continue;  // the deadline stays
    if (got < 0) refuse(file, std::string("poll: ") + std::strerror(errno));
    if (got == 0)
      refuse(file, fmt::format("a named pipe that did not deliver its text within {} s: no "
                               "writer, or one that stalled",
                               kNamedPipeSeconds));
    const ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n == 0) return text;
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n < 0) refuse(file, std::strerror(errno));
    text.append(buffer, static_cast<size_t>(n));
  }
}

}  // namespace

std::string read_config_text(const std::string& file) {
  struct stat st {};  // a name too long to check is refused as unreadable
  if (::stat(file.c_str(), &st) != 0) refuse(file, "no such file, or unreadable");
  if (S_ISDIR(st.st_mode)) refuse(file, "a folder, not a file");
  if (!S_ISREG(st.st_mode) && !S_ISFIFO(st.st_mode))
    refuse(file, "not a file or a pipe");  // a device (/dev/zero) would never end
  // A named pipe is opened without blocking: open() would wait for a writer.
  const int flags = O_RDONLY | O_CLOEXEC | (S_ISFIFO(st.st_mode) ? O_NONBLOCK : 0);
  UniqueFd fd(::open(file.c_str(), flags));
  if (!fd.is_open()) refuse(file, "no such file, or unreadable");
  struct statfs fs {};
  const bool anonymous_pipe =  // `<(...)`'s /dev/fd/N: its writer exists
      S_ISFIFO(st.st_mode) && ::fstatfs(fd.get(), &fs) == 0 && fs.f_type == PIPEFS_MAGIC;
  if (!S_ISFIFO(st.st_mode) || anonymous_pipe) {
    if (S_ISFIFO(st.st_mode) && ::fcntl(fd.get(), F_SETFL, O_RDONLY) != 0)  // blocking reads
      refuse(file, std::strerror(errno));
    return read_to_end(fd.get(), file);
  }
  return read_named_pipe(fd.get(), file);
}

}  // namespace dp
