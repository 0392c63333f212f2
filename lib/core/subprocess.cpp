#include "core/subprocess.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <poll.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <thread>
#include <utility>

extern char** environ;

namespace dp {
namespace {

using Clock = std::chrono::steady_clock;

// A pipe's two ends, each closed once.
class Pipe {
 public:
  Pipe() = default;
  Pipe(const Pipe&) = delete;
  Pipe& operator=(const Pipe&) = delete;
  ~Pipe() {
    close_read();
    close_write();
  }
  // Close-on-exec: no other child (MPI's, a loader's) keeps the write end open; dup2 clears
  // the flag on the child's stdout.
  bool open() { return ::pipe2(fds_, O_CLOEXEC) == 0; }
  int read_end() const { return fds_[0]; }
  int write_end() const { return fds_[1]; }
  void close_read() {
    if (fds_[0] >= 0) (void)::close(std::exchange(fds_[0], -1));
  }
  void close_write() {
    if (fds_[1] >= 0) (void)::close(std::exchange(fds_[1], -1));
  }

 private:
  int fds_[2] = {-1, -1};
};

// posix_spawn's attribute and file-action objects, destroyed once.
struct SpawnSetup {
  posix_spawnattr_t attributes;
  posix_spawn_file_actions_t actions;
  SpawnSetup() {
    posix_spawnattr_init(&attributes);
    posix_spawn_file_actions_init(&actions);
  }
  ~SpawnSetup() {
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attributes);
  }
  SpawnSetup(const SpawnSetup&) = delete;
  SpawnSetup& operator=(const SpawnSetup&) = delete;
};

// Waits up to `wait_ms` for `pipe` to hold something and appends one read of it to `out`;
// closes the read end at EOF. True where it read bytes.
bool read_available(Pipe& pipe, int wait_ms, std::string& out) {
  pollfd ready{pipe.read_end(), POLLIN, 0};
  if (::poll(&ready, 1, wait_ms) <= 0) return false;
  char buffer[4096];
  const ssize_t n = ::read(pipe.read_end(), buffer, sizeof buffer);
  if (n > 0) {
    out.append(buffer, size_t(n));
    return true;
  }
  if (n == 0 || errno != EINTR) pipe.close_read();
  return false;
}

std::string describe_status(const std::string& command, int status) {
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return "";
  if (WIFEXITED(status)) return fmt::format("{} exited {}", command, WEXITSTATUS(status));
  return fmt::format("{} ended by signal {}", command, WTERMSIG(status));
}

}  // namespace

std::string run_command(const std::vector<std::string>& argv, std::chrono::milliseconds timeout,
                        std::string* out) {
  const std::string command = fmt::format("{}", fmt::join(argv, " "));
  std::vector<std::string> args = argv;
  std::vector<char*> pointers;
  for (auto& a : args) pointers.push_back(a.data());
  pointers.push_back(nullptr);

  SpawnSetup setup;
  // A group of its own, so the deadline's kill reaches whatever it started too.
  posix_spawnattr_setflags(&setup.attributes, POSIX_SPAWN_SETPGROUP);
  posix_spawnattr_setpgroup(&setup.attributes, 0);
  Pipe pipe;
  if (out) {
    if (!pipe.open()) return fmt::format("cannot make a pipe: {}", std::strerror(errno));
    posix_spawn_file_actions_adddup2(&setup.actions, pipe.write_end(), STDOUT_FILENO);
  }
  pid_t pid = 0;
  const int rc = posix_spawnp(&pid, pointers[0], &setup.actions, &setup.attributes,
                              pointers.data(), environ);
  if (rc != 0) return fmt::format("cannot run {}: {}", argv[0], std::strerror(rc));
  pipe.close_write();

  const Clock::time_point deadline = Clock::now() + timeout;
  for (;;) {
    int status = 0;
    const pid_t done = ::waitpid(pid, &status, WNOHANG);
    if (done < 0 && errno != EINTR)
      return fmt::format("waiting for {}: {}", command, std::strerror(errno));
    if (done == pid) {
      // Whatever it wrote before exiting; a child it left behind may hold the pipe open, so
      // only what is there now.
      while (out && pipe.read_end() >= 0 && read_available(pipe, 0, *out)) {
      }
      return describe_status(command, status);
    }
    if (Clock::now() >= deadline) {
      ::kill(-pid, SIGKILL);
      while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
      }
      return fmt::format("{} did not finish within {} s; killed", command,
                         std::chrono::duration<double>(timeout).count());
    }
    if (out && pipe.read_end() >= 0)
      read_available(pipe, 20, *out);
    else
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

}  // namespace dp
