#include "comm/fault_injection.h"

#include <csignal>

#include "core/error.h"
#include "core/log.h"

namespace dp {

void validate_fault_injection(const FaultInjection& fault) {
  if (fault.mode != "error" && fault.mode != "kill")
    throw UsageError(fmt::format("option --fail-mode: '{}' must be error or kill", fault.mode));
  if (fault.at_step < 0) throw UsageError("option --fail-at-step: must not be negative");
  if (fault.rank < 0) throw UsageError("option --fail-rank: must not be negative");
}

void inject_fault_if_due(const FaultInjection& fault, int rank, int64_t step) {
  if (fault.at_step == 0 || fault.at_step != step || fault.rank != rank) return;
  if (fault.mode == "kill") {
    log::error("injected failure: SIGKILL at step {} (--fail-at-step)", step);
    std::raise(SIGKILL);
  }
  throw Error(ExitCode::internal,
              fmt::format("injected failure at step {} (--fail-at-step)", step));
}

}  // namespace dp
