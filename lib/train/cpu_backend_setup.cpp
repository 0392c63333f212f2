#include "train/cpu_backend_setup.h"

#include <condition_variable>
#include <cstdlib>
#include <mutex>

#include "backend/cpu/thread_pinning.h"
#include "core/error.h"
#include "core/thread_team.h"
#include "nn/model.h"

namespace dp {

namespace {

// OpenMP (libgomp) exits the process with its own message where it cannot start the team (a
// process limit, `ulimit -u`, or a pids cgroup): starting as many threads, held until all are
// up, first turns that into an error naming the option. One more than the team's workers:
// the loader thread starts beside them.
void require_startable_threads(int threads, bool chosen) {
  std::mutex mutex;
  std::condition_variable released;
  bool release = false;
  ThreadTeam team(threads, [&] {
    std::unique_lock lock(mutex);
    released.wait(lock, [&] { return release; });
  });
  {
    std::lock_guard lock(mutex);
    release = true;
  }
  released.notify_all();
  team.join();
  if (!team.refused().empty())
    throw UsageError(fmt::format(
        "option --threads: {} compute threads{} cannot be started, only {} more threads could "
        "({}; see ulimit -u, or the job's limit on tasks)",
        threads, chosen ? "" : " (--threads 0: this rank's share of the cores)", team.started(),
        team.refused()));
}

}  // namespace

CpuTeam take_cpu_team(int threads, bool pin, int local_rank, int local_size) {
  std::string note;
  const bool chosen = threads > 0;
  if (threads == 0) {
    cpu::DefaultTeam team = cpu::default_team(local_size);
    threads = team.threads;
    note = std::move(team.note);
  }
  require_startable_threads(threads, chosen);
  const std::string pinning = pin ? cpu::pin_openmp_threads(threads, local_rank, local_size)
                                  : "threads not pinned (--pin-threads false)";
  return {threads,
          fmt::format("{} thread{}{}, {}", threads, threads == 1 ? "" : "s", note, pinning)};
}

bool cpu_blocked_activations(const std::string& arch, bool bf16_convolutions, Layout bf16_layout) {
  const char* v = std::getenv("DPTRAIN_CPU_LAYOUT");
  const std::string choice = v ? v : "";
  if (choice.empty() || choice == "auto")
    return bf16_convolutions ? bf16_layout == Layout::nchw16c : !nn::uses_bottleneck_blocks(arch);
  if (choice == "blocked" || choice == "nhwc") return choice == "blocked";
  throw UsageError(fmt::format("DPTRAIN_CPU_LAYOUT={}: expected auto, blocked or nhwc", choice));
}

CpuBf16 cpu_bf16_mode(const std::string& arch, bool bf16) {
  if (!bf16) return CpuBf16::off;
  return nn::is_airbench(arch) ? CpuBf16::activations : CpuBf16::convolutions;
}

}  // namespace dp
