#include "core/subprocess.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <poll.h>
#include <spawn.h>
#include <sys/wait.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <thread>

#include "core/unique_fd.h"

extern char** environ;

namespace dp {
namespace {

using Clock = std::chrono::steady_clock;

// posix_spawn's attribute and file-action objects, each destroyed once where its init
// succeeded; `error` is the first init's failure (an errno value), 0 where both succeeded.
struct SpawnSetup {
  posix_spawnattr_t attributes;
  posix_spawn_file_actions_t actions;
  int attributes_error = posix_spawnattr_init(&attributes);
  int actions_error = posix_spawn_file_actions_init(&actions);
  int error = attributes_error != 0 ? attributes_error : actions_error;
  SpawnSetup() = default;
  ~SpawnSetup() {
    if (actions_error == 0) posix_spawn_file_actions_destroy(&actions);
    if (attributes_error == 0) posix_spawnattr_destroy(&attributes);
  }
  SpawnSetup(const SpawnSetup&) = delete;
  SpawnSetup& operator=(const SpawnSetup&) = delete;
};

// A started child, leader of its own process group. Until reaped, the destructor kills the
// group and reaps the child, so no path leaves it running or a zombie.
class Child {
 public:
  explicit Child(pid_t pid) : pid_(pid) {}
  ~Child() {
    if (pid_ > 0) kill_and_reap();
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  // False while it runs; once it has ended, true with its wait status, or with the wait's
  // errno where waiting failed (wait_errno 0 otherwise).
  bool ended(int& status, int& wait_errno) {
    const pid_t done = ::waitpid(pid_, &status, WNOHANG);
    if (done == 0 || (done < 0 && errno == EINTR)) return false;
    wait_errno = done < 0 ? errno : 0;
    pid_ = -1;
    return true;
  }
  void kill_and_reap() {
    ::kill(-pid_, SIGKILL);
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    pid_ = -1;
  }

 private:
  pid_t pid_;
};

// Waits up to `wait_ms` for `fd` to hold something and appends one read of it to `out`;
// closes `fd` at EOF or on an error. True where it read bytes.
bool read_available(UniqueFd& fd, int wait_ms, std::string& out) {
  pollfd ready{fd.get(), POLLIN, 0};
  if (::poll(&ready, 1, wait_ms) <= 0) return false;
  char buffer[4096];
  const ssize_t n = ::read(fd.get(), buffer, sizeof buffer);
  if (n > 0) {
    out.append(buffer, size_t(n));
    return true;
  }
  if (n == 0 || errno != EINTR) fd.reset();
  return false;
}

std::string describe_status(const std::string& command, int status) {
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return "";
  if (WIFEXITED(status)) return fmt::format("{} exited {}", command, WEXITSTATUS(status));
  return fmt::format("{} ended by signal {}", command, WTERMSIG(status));
}

// Starts argv in a process group of its own (so the deadline's kill reaches whatever it
// starts too), its stdout on `stdout_to` where that is open. Returns the pid, or -errno.
pid_t spawn(const std::vector<std::string>& argv, const UniqueFd& stdout_to) {
  std::vector<std::string> args = argv;
  std::vector<char*> pointers;
  for (auto& a : args) pointers.push_back(a.data());
  pointers.push_back(nullptr);
  SpawnSetup setup;
  // Each call returns 0 or an errno value; the first failure is the answer.
  int rc = setup.error;
  if (rc == 0) rc = posix_spawnattr_setflags(&setup.attributes, POSIX_SPAWN_SETPGROUP);
  if (rc == 0) rc = posix_spawnattr_setpgroup(&setup.attributes, 0);
  if (rc == 0 && stdout_to.is_open())
    rc = posix_spawn_file_actions_adddup2(&setup.actions, stdout_to.get(), STDOUT_FILENO);
  pid_t pid = 0;
  if (rc == 0)
    rc = posix_spawnp(&pid, pointers[0], &setup.actions, &setup.attributes, pointers.data(),
                      environ);
  return rc == 0 ? pid : -rc;
}

}  // namespace

std::string run_command(const std::vector<std::string>& argv, std::chrono::milliseconds timeout,
                        std::string* out) {
  const std::string command = fmt::format("{}", fmt::join(argv, " "));
  UniqueFd read_end, write_end;
  if (out) {
    // Close-on-exec: no other child (MPI's, a loader's) keeps the write end open; dup2 clears
    // the flag on the child's stdout.
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0)
      return fmt::format("cannot make a pipe: {}", std::strerror(errno));
    read_end.reset(fds[0]);
    write_end.reset(fds[1]);
  }
  const pid_t pid = spawn(argv, write_end);
  if (pid < 0) return fmt::format("cannot run {}: {}", argv[0], std::strerror(-pid));
  Child child(pid);
  write_end.reset();

  const Clock::time_point deadline = Clock::now() + timeout;
  for (int status = 0, wait_errno = 0;;) {
    if (child.ended(status, wait_errno)) {
      if (wait_errno != 0)
        return fmt::format("waiting for {}: {}", command, std::strerror(wait_errno));
      // What it wrote before exiting; a child it left behind may hold the pipe open, so only
      // what is there now.
      while (read_end.is_open() && read_available(read_end, 0, *out)) {
      }
      return describe_status(command, status);
    }
    if (Clock::now() >= deadline) {
      child.kill_and_reap();
      return fmt::format("{} did not finish within {} s; killed", command,
                         std::chrono::duration<double>(timeout).count());
    }
    if (read_end.is_open())
      read_available(read_end, 20, *out);
    else
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

}  // namespace dp
