// Test-only fault injection for the "every rank fails together" guarantee: at a chosen step
// one chosen rank either throws (an ordinary error on one rank) or SIGKILLs itself (a rank
// that vanishes without a word) or stalls forever (a hung rank, for --collective-timeout).
// Driven by `dptrain train --fail-at-step N --fail-rank R --fail-mode error|kill|stall`;
// tests/comm/test_rank_failure.py and tests/reliability/test_faults.py check that the whole
// job then ends with a non-zero exit quickly instead of hanging in a collective.
#pragma once

#include <array>
#include <cstdint>

#include "core/option_enum.h"

namespace dp {

enum class FaultMode { error, kill, stall };
constexpr std::array<NamedValue<FaultMode>, 3> enum_names(FaultMode) {
  return {{{FaultMode::error, "error"}, {FaultMode::kill, "kill"}, {FaultMode::stall, "stall"}}};
}

// The step of a fault in the start-up, before the ranks broadcast the initial weights.
constexpr int64_t kStartupFaultStep = -1;

struct FaultInjection {
  int64_t at_step = 0;         // 1-based global step; 0 = never; kStartupFaultStep
  int rank = 0;                // which rank fails
  FaultMode mode = FaultMode::error;
};

// Fails as configured when `step` (1-based, or kStartupFaultStep) is the chosen one on the
// chosen rank.
void inject_fault_if_due(const FaultInjection& fault, int rank, int64_t step);

}  // namespace dp
