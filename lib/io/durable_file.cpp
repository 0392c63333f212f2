#include "io/durable_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <utility>

#include "core/error.h"

namespace fs = std::filesystem;

namespace dp {
namespace {

// An open file descriptor, closed once. close() reports the close's own failure (where a
// write's deferred error can surface); the destructor, reached only on another failure,
// ignores it.
class FileDescriptor {
 public:
  FileDescriptor(const std::string& path, int flags, mode_t mode = 0)
      : fd_(::open(path.c_str(), flags, mode)) {}
  ~FileDescriptor() {
    if (fd_ >= 0) (void)::close(fd_);
  }
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  bool is_open() const { return fd_ >= 0; }
  int get() const { return fd_; }
  int close() { return ::close(std::exchange(fd_, -1)); }

 private:
  int fd_;
};

}  // namespace

void sync_path(const std::string& path, bool directory) {
  FileDescriptor fd(path,
                    directory ? (O_RDONLY | O_DIRECTORY | O_CLOEXEC) : (O_RDONLY | O_CLOEXEC));
  if (!fd.is_open())
    throw IoError(fmt::format("{}: cannot open to sync: {}", path, std::strerror(errno)));
  const int rc = ::fsync(fd.get());
  const int err = errno;
  // Some file systems (and /proc-like mounts) do not support fsync on directories.
  if (rc != 0 && !(directory && (err == EINVAL || err == EROFS)))
    throw IoError(fmt::format("{}: fsync failed: {}", path, std::strerror(err)));
}

void write_durably(const std::string& path, const std::vector<uint8_t>& bytes,
                   const std::string& what) {
  auto fail = [&](const char* call) {
    const int err = errno;
    ::unlink(path.c_str());
    throw IoError(fmt::format("{}: cannot write {}: {} failed: {}", path, what, call,
                              std::strerror(err)));
  };
  FileDescriptor fd(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);  // less the umask
  if (!fd.is_open()) fail("open");
  for (size_t done = 0; done < bytes.size();) {
    const ssize_t n = ::write(fd.get(), bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      if (n == 0) errno = ENOSPC;
      fail("write");
    }
    done += size_t(n);
  }
  if (::fsync(fd.get()) != 0) fail("fsync");
  if (fd.close() != 0) fail("close");
}

void replace_durably(const std::string& path, const std::vector<uint8_t>& bytes,
                     const std::string& what) {
  const std::string tmp = path + ".tmp";
  write_durably(tmp, bytes, what);
  // The replacement keeps the permissions of the file it replaces (a group-writable run
  // directory's files stay group-writable); a new file gets the umask's, as any creat().
  struct stat old;
  if (::stat(path.c_str(), &old) == 0) (void)::chmod(tmp.c_str(), old.st_mode & 07777);
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) {
    std::error_code ignored;  // a full-size copy that nothing reads: not left on a failing disk
    fs::remove(tmp, ignored);
    throw IoError(fmt::format("{}: cannot rename {} into place: {}", path, what, ec.message()));
  }
  sync_path(parent_directory(path), true);
}

std::string parent_directory(const std::string& path) {
  fs::path parent = fs::path(path).parent_path();
  return parent.empty() ? std::string(".") : parent.string();
}

}  // namespace dp
