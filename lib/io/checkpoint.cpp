#include "io/checkpoint.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <utility>

#include "io/hdf5.h"

namespace fs = std::filesystem;

namespace dp {

namespace {

template <typename Named>
void write_section(const h5::Group& group, const std::vector<Named>& tensors,
                   h5::Checksum checksum) {
  for (const auto& t : tensors) {
    std::vector<hsize_t> dims(t.shape.begin(), t.shape.end());
    group.write(t.name, dims, t.data, 0, 0, checksum);
  }
}

template <typename Named>
void read_section(const h5::File& file, const std::string& section,
                  const std::vector<Named>& tensors) {
  if (tensors.empty()) return;
  if (!file.has(section))
    throw DataError(fmt::format("{}: checkpoint has no '{}' group", file.filename(), section));
  h5::Group group = file.group(section);
  for (const auto& t : tensors) {
    if (!group.has(t.name))
      throw DataError(fmt::format("{}: checkpoint lacks {}/{}", file.filename(), section, t.name));
    h5::Dataset ds = group.dataset(t.name);
    auto dims = ds.dims();
    Shape shape(dims.begin(), dims.end());
    if (shape != t.shape)
      throw DataError(fmt::format("{}: {}/{} has shape {}, the model expects {}", file.filename(),
                                  section, t.name, to_string(shape), to_string(t.shape)));
    ds.read(t.data, numel(t.shape));  // a checksum mismatch throws, naming the dataset
    if (!ds.checksummed()) h5::note_unverified_once(file.filename());
  }
}

CheckpointMeta read_meta(const h5::File& file) {
  CheckpointMeta meta;
  // Packed datasets and metrics files name their format (checkpoints do not) beside a
  // format_version of their own.
  if (file.has_attribute("format"))
    throw DataError(fmt::format("{}: not a checkpoint (a '{}' file)", file.filename(),
                                file.string_attribute("format")));
  if (!file.has_attribute("format_version"))
    throw DataError(fmt::format("{}: not a dptrain checkpoint (no format_version)", file.filename()));
  meta.ints["format_version"] = file.int_attribute("format_version");
  if (file.has_attribute("string_keys")) {
    for (const auto& key : file.strings_attribute("string_keys"))
      meta.strings[key] = file.string_attribute(key);
  }
  if (file.has_attribute("int_keys")) {
    for (const auto& key : file.strings_attribute("int_keys"))
      meta.ints[key] = file.int_attribute(key);
  }
  const int64_t version = meta.ints["format_version"];
  if (version < kOldestReadableCheckpointFormat || version > kCheckpointFormatVersion)
    throw DataError(fmt::format("{}: checkpoint format_version {} (this build reads {} to {})",
                                file.filename(), version, kOldestReadableCheckpointFormat,
                                kCheckpointFormatVersion));
  return meta;
}

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

// Pushes a file's (or directory's) data to stable storage: the rename that publishes a
// checkpoint must not reach the disk before the checkpoint's own bytes do.
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

// Writes `bytes` to `path` (created or truncated) and fsyncs it; on any failure removes the
// partial file and throws IoError with the system's reason (ENOSPC, EFBIG, EACCES, EROFS...).
void write_durably(const std::string& path, const std::vector<uint8_t>& bytes) {
  auto fail = [&](const char* what) {
    const int err = errno;
    ::unlink(path.c_str());
    throw IoError(
        fmt::format("{}: cannot write checkpoint: {} failed: {}", path, what, std::strerror(err)));
  };
  FileDescriptor fd(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
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

std::string parent_directory(const std::string& path) {
  fs::path parent = fs::path(path).parent_path();
  return parent.empty() ? std::string(".") : parent.string();
}

}  // namespace

void save_checkpoint(const std::string& path, const CheckpointSections& sections,
                     const CheckpointMeta& meta, bool checksums) {
  const std::string tmp = path + ".tmp";
  const h5::Checksum checksum = checksums ? h5::Checksum::fletcher32 : h5::Checksum::none;
  std::vector<uint8_t> image;
  {
    // Built in memory, then written with plain checked writes (write_durably): a full disk or
    // a read-only directory is then an IoError, never a half-closed HDF5 file.
    h5::File file(tmp, h5::File::Mode::create_in_memory);
    file.set_attribute("format_version", kCheckpointFormatVersion);
    std::vector<std::string> int_keys, string_keys;
    for (const auto& [key, value] : meta.ints) {
      if (key == "format_version") continue;
      file.set_attribute(key, value);
      int_keys.push_back(key);
    }
    for (const auto& [key, value] : meta.strings) {
      file.set_attribute(key, value);
      string_keys.push_back(key);
    }
    file.set_attribute("int_keys", int_keys);
    file.set_attribute("string_keys", string_keys);
    write_section(file.require_group("params"), sections.params, checksum);
    write_section(file.require_group("buffers"), sections.buffers, checksum);
    if (!sections.momentum.empty())
      write_section(file.require_group("optimizer/momentum"), sections.momentum, checksum);
    if (!sections.lookahead_params.empty() || !sections.lookahead_buffers.empty()) {
      write_section(file.require_group("lookahead/params"), sections.lookahead_params, checksum);
      write_section(file.require_group("lookahead/buffers"), sections.lookahead_buffers, checksum);
    }
    if (!sections.train_state_f32.empty() || !sections.train_state_f64.empty()) {
      h5::Group state = file.require_group("train_state");
      write_section(state, sections.train_state_f32, checksum);
      write_section(state, sections.train_state_f64, checksum);
    }
    image = file.image();
  }
  write_durably(tmp, image);
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) {
    std::error_code ignored;  // a full-size copy that nothing reads: not left on a failing disk
    fs::remove(tmp, ignored);
    throw IoError(fmt::format("{}: cannot rename checkpoint into place: {}", path, ec.message()));
  }
  sync_path(parent_directory(path), true);
}

CheckpointMeta load_checkpoint(const std::string& path, const CheckpointSections& sections) {
  h5::File file(path, h5::File::Mode::read);
  CheckpointMeta meta = read_meta(file);
  read_section(file, "params", sections.params);
  read_section(file, "buffers", sections.buffers);
  read_section(file, "optimizer/momentum", sections.momentum);
  read_section(file, "lookahead/params", sections.lookahead_params);
  read_section(file, "lookahead/buffers", sections.lookahead_buffers);
  read_section(file, "train_state", sections.train_state_f32);
  read_section(file, "train_state", sections.train_state_f64);
  return meta;
}

CheckpointMeta read_checkpoint_meta(const std::string& path) {
  h5::File file(path, h5::File::Mode::read);
  return read_meta(file);
}

void publish_checkpoint_as(const std::string& target, const std::string& link) {
  const std::string tmp = link + ".tmp";
  std::error_code ec;
  fs::remove(tmp, ec);
  fs::create_hard_link(target, tmp, ec);
  if (ec) {
    fs::copy_file(target, tmp, fs::copy_options::overwrite_existing, ec);
    if (ec) throw IoError(fmt::format("{}: cannot copy checkpoint {}: {}", link, target, ec.message()));
    sync_path(tmp, false);
  }
  fs::rename(tmp, link, ec);
  if (ec) throw IoError(fmt::format("{}: cannot rename checkpoint into place: {}", link, ec.message()));
  sync_path(parent_directory(link), true);
}

}  // namespace dp
