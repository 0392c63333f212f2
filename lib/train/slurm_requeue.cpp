#include "train/slurm_requeue.h"

#include <spawn.h>
#include <sys/wait.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <vector>

#include <fmt/format.h>

extern char** environ;

namespace dp {

std::string slurm_job_id() {
  const char* id = std::getenv("SLURM_JOB_ID");
  return id ? std::string(id) : std::string();
}

std::string requeue_slurm_job(const std::string& job_id) {
  std::vector<std::string> args = {"scontrol", "requeue", job_id};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  // posix_spawn, not fork: the process may hold MPI's and the interconnect's resources.
  const int rc = posix_spawnp(&pid, "scontrol", nullptr, nullptr, argv.data(), environ);
  if (rc != 0) return fmt::format("cannot run scontrol: {}", std::strerror(rc));
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return fmt::format("waiting for scontrol: {}", std::strerror(errno));
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return "";
  if (WIFEXITED(status)) return fmt::format("scontrol requeue {} exited {}", job_id, WEXITSTATUS(status));
  return fmt::format("scontrol requeue {} ended by signal {}", job_id, WTERMSIG(status));
}

}  // namespace dp
