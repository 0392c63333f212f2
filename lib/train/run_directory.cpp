#include "train/run_directory.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <thread>

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
  // A reader's probe of the lock (dptrain-report asks whether a job runs the directory with a
  // shared lock it drops at once) must not refuse a starting job: a held lock is tried again
  // for a second before it counts as another job's.
  int err = 0;
  for (int attempt = 0; attempt < 20; ++attempt) {
    if (::flock(fd_.get(), LOCK_EX | LOCK_NB) == 0) return;
    err = errno;
    if (err != EWOULDBLOCK) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
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

std::string ReplacedRun::folder_in(const std::string& run_dir) { return run_dir + "/.replaced"; }

namespace {
// The files of a run in `dir` that --overwrite replaces.
std::vector<std::string> run_files(const std::string& dir) {
  std::vector<std::string> names = checkpoint_names(dir);
  std::error_code ec;
  for (const char* name : {kMetricsFileName, kEvalFileName})
    if (fs::exists(fs::symlink_status(fs::path(dir) / name, ec))) names.emplace_back(name);
  return names;
}

// What a killed job left in .replaced/: put back where the run directory holds no checkpoint
// (only that job's metrics.h5, which it replaces), deleted otherwise (a later run's are there).
void recover_leftover(const std::string& run_dir, const std::string& folder) {
  std::error_code ec;
  if (!fs::exists(fs::symlink_status(folder, ec))) return;
  if (!checkpoint_names(run_dir).empty()) {
    log::info(
        "note: {} held a run a killed --overwrite job had set aside, older than the "
        "checkpoints beside it: deleted",
        folder);
    fs::remove_all(folder, ec);
    if (ec) throw IoError(fmt::format("{}: cannot delete: {}", folder, ec.message()));
    return;
  }
  std::vector<fs::path> files;  // listed first: renaming while iterating is unspecified
  for (fs::directory_iterator it(folder, ec), end; !ec && it != end; it.increment(ec))
    files.push_back(it->path());
  if (ec) throw IoError(fmt::format("{}: cannot list: {}", folder, ec.message()));
  for (const fs::path& file : files) {
    fs::rename(file, fs::path(run_dir) / file.filename(), ec);
    if (ec)
      throw IoError(
          fmt::format("{}: cannot put it back into {}: {}", file.string(), run_dir, ec.message()));
  }
  fs::remove(folder, ec);
  log::info("note: {} held a run a killed --overwrite job had set aside: put back first", folder);
}
}  // namespace

ReplacedRun::ReplacedRun(std::string run_dir)
    : run_dir_(std::move(run_dir)), folder_(folder_in(run_dir_)) {
  recover_leftover(run_dir_, folder_);
  std::error_code ec;
  if (!fs::create_directory(folder_, ec))
    throw IoError(fmt::format("{}: cannot make a folder for the replaced run: {}", folder_,
                              ec ? ec.message() : "it exists"));
  for (const std::string& name : run_files(run_dir_)) {
    fs::rename(fs::path(run_dir_) / name, fs::path(folder_) / name, ec);
    if (ec) {
      const std::string error =
          fmt::format("{}/{}: cannot move the replaced run's file into {}: {}", run_dir_, name,
                      folder_, ec.message());
      move_back();  // nothing of the new run written yet: only those moved go back
      throw IoError(error);
    }
    names_.push_back(name);
  }
  sync_path(run_dir_, /*directory=*/true);
}

void ReplacedRun::move_back() noexcept {
  std::error_code ec;
  for (const std::string& name : names_)
    fs::rename(fs::path(folder_) / name, fs::path(run_dir_) / name, ec);
  fs::remove(folder_, ec);  // only where empty: a file that did not move back stays there
  names_.clear();
}

ReplacedRun::~ReplacedRun() {
  if (discarded_) return;
  try {
    const bool restores = !names_.empty();
    // The new run's metrics.h5 (closed by now) goes where the replaced run had none to put back
    // over it; no checkpoint can exist before the first step.
    std::error_code ec;
    if (restores && std::find(names_.begin(), names_.end(), kMetricsFileName) == names_.end())
      fs::remove(fs::path(run_dir_) / kMetricsFileName, ec);
    move_back();
    if (restores)
      log::info("note: the new run ended before its first step; the run it replaced is back in {}",
                run_dir_);
  } catch (...) {  // a destructor, maybe during unwinding: never throws
  }
}

void ReplacedRun::discard() {
  std::error_code ec;
  fs::remove_all(folder_, ec);
  if (ec) log::info("warning: {}: cannot delete the replaced run: {}", folder_, ec.message());
  discarded_ = true;
}

std::unique_ptr<ReplacedRun> RunDirectory::set_replaced_run_aside() const {
  return std::make_unique<ReplacedRun>(path_);
}

namespace {
constexpr const char* kStampFormat = "%Y%m%d-%H%M%S";  // in file and run names
}  // namespace

std::string RunDirectory::set_aside(const std::string& file, const char* why) const {
  const std::string stem = fmt::format("{}/{}.{}-{}", path_, fs::path(file).stem().string(), why,
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

std::string default_run_name(const std::string& arch, const std::string& dataset,
                             const std::string& slurm_job) {
  // The dataset's name comes from its file (a folder's name, or anything h5py wrote) and the
  // job id from the environment: only letters, digits, '.', '-' and '_' are kept, so the name
  // stays one plain folder name under --output-dir.
  auto safe = [](std::string text) {
    for (char& ch : text)
      if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '.' && ch != '-' && ch != '_')
        ch = '_';
    return text;
  };
  const std::string when = slurm_job.empty() ? utc_time(kStampFormat) : "slurm" + safe(slurm_job);
  return fmt::format("{}-{}-{}", arch, safe(dataset), when);
}

}  // namespace dp
