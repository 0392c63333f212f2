#include "io/durable_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "core/error.h"
#include "core/log.h"
#include "core/unique_fd.h"

namespace fs = std::filesystem;

namespace dp {
void sync_path(const std::string& path, bool directory) {
  UniqueFd fd(::open(path.c_str(),
                     directory ? (O_RDONLY | O_DIRECTORY | O_CLOEXEC) : (O_RDONLY | O_CLOEXEC)));
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
  // A new file, never one found at `path`: a leftover hard link there (a publish cut short
  // between its link and its rename) shares its inode with another checkpoint, which writing
  // through it would overwrite.
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) fail("unlink");
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                     0666));  // less the umask
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

void keep_permissions(const std::string& replaced, const std::string& replacement) {
  struct stat old;
  if (::stat(replaced.c_str(), &old) != 0) return;  // nothing replaced: the umask's mode
  if (::chmod(replacement.c_str(), old.st_mode & 07777) != 0)
    log::info("warning: {}'s replacement has the default mode, not its {:o}: chmod: {}", replaced,
              old.st_mode & 07777, std::strerror(errno));
}

void replace_durably(const std::string& path, const std::vector<uint8_t>& bytes,
                     const std::string& what) {
  const std::string tmp = tmp_path_for(path);
  write_durably(tmp, bytes, what);
  rename_into_place(tmp, path, what);
}

void rename_into_place(const std::string& tmp, const std::string& path, const std::string& what) {
  keep_permissions(path, tmp);
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) {
    std::error_code ignored;
    fs::remove(tmp, ignored);
    throw IoError(fmt::format("{}: cannot move {} into place: {}", path, what, ec.message()));
  }
  sync_path(parent_directory(path), true);
}

std::string tmp_path_for(const std::string& path) { return path + ".tmp"; }

std::string parent_directory(const std::string& path) {
  fs::path parent = fs::path(path).parent_path();
  return parent.empty() ? std::string(".") : parent.string();
}

}  // namespace dp
