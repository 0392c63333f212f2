#include "io/replace_file.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <signal.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <vector>

#include "core/error.h"
#include "core/unique_fd.h"
#include "io/durable_file.h"

namespace dp {
namespace {

// The tmp file being written, for the handler below: a fixed buffer and unlink, which are
// async-signal-safe.
char g_tmp_path[4096];

extern "C" void remove_tmp_then_default(int signal) {
  ::unlink(g_tmp_path);
  ::signal(signal, SIG_DFL);
  ::raise(signal);  // ends the process as the signal would have
}

// While alive, SIGINT, SIGTERM, SIGHUP and SIGPIPE (a log reader gone: `| head`) (where their
// action is the default one, ending the process) remove `tmp` first, so an interrupted pack or
// eval leaves no half-written file.
class RemoveOnSignal {
 public:
  explicit RemoveOnSignal(const std::string& tmp) {
    if (tmp.size() >= sizeof g_tmp_path) return;
    std::memcpy(g_tmp_path, tmp.c_str(), tmp.size() + 1);
    for (size_t i = 0; i < kSignals.size(); ++i) {
      struct sigaction current {};
      if (::sigaction(kSignals[i], nullptr, &current) != 0 || current.sa_handler != SIG_DFL)
        continue;  // ignored (nohup) or handled by someone else: left alone
      struct sigaction action {};
      action.sa_handler = remove_tmp_then_default;
      sigemptyset(&action.sa_mask);
      installed_[i] = ::sigaction(kSignals[i], &action, nullptr) == 0;
    }
  }
  ~RemoveOnSignal() {
    struct sigaction restore {};
    restore.sa_handler = SIG_DFL;
    sigemptyset(&restore.sa_mask);
    for (size_t i = 0; i < kSignals.size(); ++i)
      if (installed_[i]) ::sigaction(kSignals[i], &restore, nullptr);
  }
  RemoveOnSignal(const RemoveOnSignal&) = delete;
  RemoveOnSignal& operator=(const RemoveOnSignal&) = delete;

 private:
  static constexpr std::array<int, 4> kSignals = {SIGINT, SIGTERM, SIGHUP, SIGPIPE};
  std::array<bool, kSignals.size()> installed_{};
};

// Creates `folder` and whichever of its parents are missing; unless keep() is called, removes
// again those it created (each only while empty, deepest first), so that a failed write
// leaves the tree as it found it.
class MadeFolders {
 public:
  explicit MadeFolders(const std::filesystem::path& folder) {
    namespace fs = std::filesystem;
    std::error_code ec;
    // The missing levels, outermost first; a link (even to nothing) is not missing.
    std::vector<fs::path> missing;
    for (fs::path p = folder.lexically_normal();
         !p.empty() && !fs::exists(fs::symlink_status(p, ec)); p = p.parent_path()) {
      missing.insert(missing.begin(), p);
      if (p == p.parent_path()) break;  // a root
    }
    // One level at a time, recording only those this call made (not one that another process
    // made meanwhile); a failure shows when the file is created there.
    for (const fs::path& p : missing) {
      if (fs::create_directory(p, ec))
        made_.insert(made_.begin(), p);
      else if (ec || !fs::is_directory(p, ec))  // made meanwhile by another process: go on
        break;
    }
  }
  ~MadeFolders() {
    std::error_code ec;
    for (const auto& p : made_) std::filesystem::remove(p, ec);  // fails, harmlessly, if not empty
  }
  void keep() { made_.clear(); }
  MadeFolders(const MadeFolders&) = delete;
  MadeFolders& operator=(const MadeFolders&) = delete;

 private:
  std::vector<std::filesystem::path> made_;  // deepest first
};

// Creates the empty file `tmp`, failing if anything is there already: another process writing
// the same output, one a killed process left, or a link, which is then neither followed,
// truncated nor removed.
[[noreturn]] void throw_tmp_exists(const std::string& tmp) {
  throw IoError(
      fmt::format("{} exists: another process is writing this output, or one that "
                  "was killed left it (remove it if none is running)",
                  tmp));
}

void create_exclusively(const std::string& tmp) {
  // 0666 less the umask, as the HDF5 library would have created it.
  UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666));
  if (fd.is_open()) return;
  if (errno == EEXIST) throw_tmp_exists(tmp);
  throw IoError(fmt::format("{}: cannot create: {}", tmp, std::strerror(errno)));
}

}  // namespace

void write_then_rename(const std::string& output_file,
                       const std::function<void(const std::string& tmp)>& write) {
  namespace fs = std::filesystem;
  const fs::path output(output_file);
  const fs::path tmp(tmp_path_for(output_file));
  std::error_code ec;
  MadeFolders folders(output.parent_path());
  create_exclusively(tmp.string());
  RemoveOnSignal remove_on_signal(tmp.string());
  try {
    write(tmp.string());
    sync_path(tmp.string(), /*directory=*/false);
  } catch (...) {
    fs::remove(tmp, ec);
    throw;
  }
  rename_into_place(tmp.string(), output_file, "the written file");
  folders.keep();
}

void check_replaceable_output(const std::string& path, const ReplaceableOutput& rule) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::file_status status = fs::symlink_status(path, ec);
  if (fs::is_symlink(status))
    throw UsageError(fmt::format(
        "{}: {} is a link ({} would replace the link, not its target); name the file itself",
        rule.option, path, rule.command));
  if (!fs::exists(status)) return;
  if (!fs::is_regular_file(status) || !rule.is_ours(path))
    throw UsageError(
        fmt::format("{}: {} exists and is not {} ({} replaces only those); choose another path",
                    rule.option, path, rule.ours, rule.command));
}

void check_no_leftover_tmp(const std::string& path) {
  std::error_code ec;
  const std::string tmp = tmp_path_for(path);
  if (std::filesystem::exists(std::filesystem::symlink_status(tmp, ec))) throw_tmp_exists(tmp);
}

}  // namespace dp
