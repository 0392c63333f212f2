// The one owner of a POSIX file descriptor: closed once, on every path.
#pragma once

#include <unistd.h>

#include <utility>

namespace dp {

class UniqueFd {
 public:
  explicit UniqueFd(int fd = -1) : fd_(fd) {}
  ~UniqueFd() { reset(); }
  UniqueFd(UniqueFd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    if (this != &other) reset(std::exchange(other.fd_, -1));
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;

  bool is_open() const { return fd_ >= 0; }
  int get() const { return fd_; }
  // Closes the descriptor (its close error ignored: reached where nothing can be reported) and
  // takes `fd` instead.
  void reset(int fd = -1) {
    if (fd_ >= 0) (void)::close(fd_);
    fd_ = fd;
  }
  // Closes it and returns close's own result, where a write's deferred error can surface.
  int close() { return ::close(std::exchange(fd_, -1)); }

 private:
  int fd_;
};

}  // namespace dp
