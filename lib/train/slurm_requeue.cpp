#include "train/slurm_requeue.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <vector>

extern char** environ;

namespace dp {
namespace {

// Runs `scontrol ARGS` and waits for it; its stdout into `out` when given. Returns "" on
// success, or why it failed. posix_spawn, not fork: the process may hold MPI's and the
// interconnect's resources.
std::string run_scontrol(std::vector<std::string> args, std::string* out = nullptr) {
  args.insert(args.begin(), "scontrol");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  int pipe_fds[2] = {-1, -1};
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  if (out) {
    // Close-on-exec: no other child (MPI's, a loader's) keeps the write end open; dup2 clears
    // the flag on scontrol's stdout.
    if (::pipe2(pipe_fds, O_CLOEXEC) != 0) {
      posix_spawn_file_actions_destroy(&actions);
      return fmt::format("cannot make a pipe: {}", std::strerror(errno));
    }
    posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], STDOUT_FILENO);
  }
  pid_t pid = 0;
  const int rc = posix_spawnp(&pid, "scontrol", &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (out) {
    ::close(pipe_fds[1]);
    char buffer[4096];
    for (ssize_t n; (n = ::read(pipe_fds[0], buffer, sizeof buffer)) != 0;) {
      if (n > 0)
        out->append(buffer, size_t(n));
      else if (errno != EINTR)
        break;
    }
    ::close(pipe_fds[0]);
  }
  if (rc != 0) return fmt::format("cannot run scontrol: {}", std::strerror(rc));
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return fmt::format("waiting for scontrol: {}", std::strerror(errno));
  }
  const std::string command =
      fmt::format("scontrol {}", fmt::join(args.begin() + 1, args.end(), " "));
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return "";
  if (WIFEXITED(status)) return fmt::format("{} exited {}", command, WEXITSTATUS(status));
  return fmt::format("{} ended by signal {}", command, WTERMSIG(status));
}

// Slurm's [D-]HH:MM:SS (also MM:SS); -1 for UNLIMITED, Partition_Limit or anything else.
long slurm_seconds(const std::string& text) {
  long days = 0, parts[3] = {0, 0, 0};
  int count = 0;
  std::string rest = text;
  if (const size_t dash = rest.find('-'); dash != std::string::npos) {
    days = std::atol(rest.substr(0, dash).c_str());
    rest = rest.substr(dash + 1);
  }
  std::istringstream in(rest);
  for (std::string part; count < 3 && std::getline(in, part, ':'); ++count) {
    if (part.empty() || part.find_first_not_of("0123456789") != std::string::npos) return -1;
    parts[count] = std::atol(part.c_str());
  }
  if (count < 2) return -1;
  const long hms =
      count == 3 ? parts[0] * 3600 + parts[1] * 60 + parts[2] : parts[0] * 60 + parts[1];
  return days * 86400 + hms;
}

}  // namespace

std::string slurm_job_id() {
  const char* id = std::getenv("SLURM_JOB_ID");
  return id ? std::string(id) : std::string();
}

std::map<std::string, std::string> slurm_job_fields(const std::string& job_id) {
  std::string text;
  std::map<std::string, std::string> fields;
  if (!run_scontrol({"--oneliner", "show", "job", job_id}, &text).empty()) return fields;
  std::istringstream words(text);
  for (std::string word; words >> word;) {
    const size_t equals = word.find('=');
    if (equals != std::string::npos)
      fields.emplace(word.substr(0, equals), word.substr(equals + 1));
  }
  return fields;
}

std::string why_not_requeue(const std::map<std::string, std::string>& job) {
  const auto field = [&](const char* name) {
    const auto it = job.find(name);
    return it == job.end() ? std::string() : it->second;
  };
  const std::string state = field("JobState");
  // Unreadable, or still running (the --signal warning before the time limit): requeue.
  if (state.empty() || state == "RUNNING") return "";
  if (state == "PENDING" || state.rfind("REQUEUE", 0) == 0) return "it is requeued already";
  // Ending: by its time limit or a preemption it comes back; else its user cancelled it.
  const long limit = slurm_seconds(field("TimeLimit"));
  const long ran = slurm_seconds(field("RunTime"));
  if (limit >= 0 && ran >= limit) return "";
  if (!field("PreemptTime").empty() && field("PreemptTime") != "None") return "";
  if (state == "TIMEOUT" || state == "PREEMPTED") return "";
  return fmt::format(
      "it is ending before its time limit and was not preempted: cancelled (scancel), or "
      "requeued by someone else (JobState={} RunTime={} TimeLimit={} PreemptTime={})",
      state, field("RunTime"), field("TimeLimit"), field("PreemptTime"));
}

std::string requeue_slurm_job(const std::string& job_id) {
  return run_scontrol({"requeue", job_id});
}

}  // namespace dp
