#include "comm/fault_injection.h"

#include <chrono>
#include <csignal>
#include <thread>

#include "core/error.h"
#include "core/log.h"

namespace dp {

void inject_fault_if_due(const FaultInjection& fault, int rank, int64_t step) {
  if (fault.at_step == 0 || fault.at_step != step || fault.rank != rank) return;
  const std::string where =
      step == kStartupFaultStep ? "in the start-up" : fmt::format("at step {}", step);
  if (fault.mode == FaultMode::kill) {
    log::error("injected failure: SIGKILL {} (--fail-at-step)", where);
    std::raise(SIGKILL);
  }
  if (fault.mode == FaultMode::stall) {
    // Never returns: the other ranks wait in their next collective until the watchdog
    // (--collective-timeout) ends the job.
    log::error("injected failure: stalling forever {} (--fail-at-step)", where);
    while (true) std::this_thread::sleep_for(std::chrono::seconds(1));
  }
  throw Error(ExitCode::internal, fmt::format("injected failure {} (--fail-at-step)", where));
}

}  // namespace dp
