#include "train/cpu_backend_setup.h"

#include <cstdlib>

#include "backend/cpu/thread_pinning.h"
#include "core/error.h"
#include "nn/model.h"

namespace dp {

CpuTeam take_cpu_team(int threads, bool pin, int local_rank, int local_size) {
  std::string note;
  if (threads == 0) {
    cpu::DefaultTeam team = cpu::default_team(local_size);
    threads = team.threads;
    note = std::move(team.note);
  }
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
