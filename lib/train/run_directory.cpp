#include "train/run_directory.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "core/error.h"
#include "core/log.h"
#include "core/timer.h"
#include "io/durable_file.h"
#include "train/checkpoint_files.h"

namespace fs = std::filesystem;

namespace dp {

std::string RunLock::file_in(const std::string& directory) { return directory + "/.dptrain.lock"; }

RunLock::RunLock(const std::string& directory) {
  const std::string path = file_in(directory);
  // Writable where it can be (NFS emulates flock with POSIX locks, whose exclusive kind needs
  // a writable descriptor); read-only where a colleague of the run's group created it.
  fd_.reset(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0666));
  if (!fd_.is_open() && errno == EACCES) fd_.reset(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd_.is_open())
    throw IoError(
        fmt::format("{}: cannot create the run's lock file: {}", path, std::strerror(errno)));
  if (::flock(fd_.get(), LOCK_EX | LOCK_NB) == 0) return;
  const int err = errno;
  if (err == EWOULDBLOCK)
    throw UsageError(fmt::format(
        "{}: another dptrain job is writing this run directory (it holds {}); wait for it to "
        "end, or choose another --run-name",
        directory, path));
  // A file system without flock (ENOLCK, EOPNOTSUPP): the run goes on unguarded.
  log::info("note: {}: cannot lock ({}); nothing stops a second job writing this run", path,
            std::strerror(err));
}

RunDirectory::RunDirectory(const std::string& output_dir, const std::string& run_name,
                           Existing existing, bool create)
    : path_((fs::path(output_dir) / run_name).string()) {
  if (!create) return;
  std::error_code ec;
  created_ = fs::create_directories(path_, ec);
  if (ec) throw IoError(fmt::format("{}: cannot create run directory: {}", path_, ec.message()));
  lock_ = std::make_unique<RunLock>(path_);
  if (existing == Existing::refuse && fs::exists(metrics()))
    throw UsageError(fmt::format(
        "{} already holds a run; choose another --run-name, pass --overwrite, or continue it "
        "with --resume auto",
        path_));
}

RunDirectory::~RunDirectory() {
  if (!created_) return;
  std::error_code ec;
  const fs::path lock_file = RunLock::file_in(path_);
  for (fs::directory_iterator it(path_, ec), end; !ec && it != end; it.increment(ec))
    if (it->path() != lock_file) return;  // the run wrote something: it stays
  if (ec) return;
  fs::remove(lock_file, ec);  // while still holding the lock, so no other job takes it meanwhile
  lock_.reset();
  fs::remove(path_, ec);  // fails, leaving it, if another job has just created a file there
}

void RunDirectory::remove_replaced_run() const {
  remove_checkpoints(path_);
  for (const std::string& file : {metrics(), eval()}) {
    std::error_code ec;
    if (!fs::remove(file, ec) && ec)
      throw IoError(
          fmt::format("{}: cannot delete the replaced run's file: {}", file, ec.message()));
  }
}

namespace {
constexpr const char* kStampFormat = "%Y%m%d-%H%M%S";  // in file and run names
}  // namespace

std::string RunDirectory::set_aside(const std::string& file) const {
  const std::string stem = fmt::format("{}/{}.superseded-{}", path_, fs::path(file).stem().string(),
                                       utc_time(kStampFormat));
  std::string aside = stem + ".h5";
  for (int n = 2; fs::exists(aside); ++n) aside = fmt::format("{}-{}.h5", stem, n);
  std::error_code ec;
  fs::rename(file, aside, ec);
  if (ec)
    throw IoError(fmt::format("{}: cannot set it aside as {}: {}", file, aside, ec.message()));
  sync_path(path_, /*directory=*/true);  // on disk before anything written after it
  return aside;
}

std::string default_run_name(const std::string& arch, const std::string& dataset) {
  // The dataset's name comes from its file (a folder's name, or anything h5py wrote): only
  // letters, digits, '.', '-' and '_' are kept, so the name stays one plain folder name
  // under --output-dir.
  std::string safe = dataset;
  for (char& ch : safe)
    if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '.' && ch != '-' && ch != '_')
      ch = '_';
  return fmt::format("{}-{}-{}", arch, safe, utc_time(kStampFormat));
}

}  // namespace dp
