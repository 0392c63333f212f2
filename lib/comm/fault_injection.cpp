#include "comm/fault_injection.h"

#include <chrono>
#include <csignal>
#include <thread>

#include "core/error.h"
#include "core/log.h"

namespace dp {

void validate_fault_injection(const FaultInjection& fault) {
  if (fault.mode != "error" && fault.mode != "kill" && fault.mode != "stall")
    throw UsageError(
        fmt::format("option --fail-mode: '{}' must be error, kill or stall", fault.mode));
  if (fault.at_step < 0) throw UsageError("option --fail-at-step: must not be negative");
  if (fault.rank < 0) throw UsageError("option --fail-rank: must not be negative");
}

void inject_fault_if_due(const FaultInjection& fault, int rank, int64_t step) {
  if (fault.at_step == 0 || fault.at_step != step || fault.rank != rank) return;
  if (fault.mode == "kill") {
    log::error("injected failure: SIGKILL at step {} (--fail-at-step)", step);
    std::raise(SIGKILL);
  }
  if (fault.mode == "stall") {
    // Never returns: the other ranks wait in their next collective until the watchdog
    // (--collective-timeout) ends the job.
    log::error("injected failure: stalling forever at step {} (--fail-at-step)", step);
    while (true) std::this_thread::sleep_for(std::chrono::seconds(1));
  }
  throw Error(ExitCode::internal,
              fmt::format("injected failure at step {} (--fail-at-step)", step));
}

}  // namespace dp
