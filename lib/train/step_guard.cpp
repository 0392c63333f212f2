#include "train/step_guard.h"

#include <cmath>

#include "comm/agreed_verdict.h"
#include "core/error.h"
#include "core/log.h"

namespace dp {

StepGuardOptions step_guard_options(const TrainConfig& config) {
  StepGuardOptions options;
  options.max_consecutive_skips = config.max_consecutive_skips;
  return options;
}

StepGuard::StepGuard(const StepGuardOptions& options, Backend& backend, Communicator& comm,
                     CollectiveWatchdog& watchdog)
    : options_(options), backend_(backend), comm_(comm), watchdog_(watchdog) {}

bool StepGuard::skip_update(float loss, const Tensor& grads, int64_t epoch, int64_t step_in_epoch) {
  watchdog_.beat();
  // A NaN in any rank's gradients reaches every rank's averaged gradients, but a non-finite
  // loss need not (a rank whose loss overflowed may still produce finite gradients), and the
  // ranks must decide alike: so each rank checks both, and the flags are summed.
  const double norm_squared = backend_.sum_of_squares(grads);
  double bad = std::isfinite(loss) && std::isfinite(norm_squared) ? 0.0 : 1.0;
  comm_.allreduce_sum(&bad, 1);
  if (bad == 0) {
    consecutive_ = 0;
    return false;
  }
  ++consecutive_;
  log::info(
      "epoch {} step {}: non-finite loss or gradients on {} of {} ranks (rank 0: loss {}, "
      "gradient norm {}); update skipped, {} in a row",
      epoch, step_in_epoch, bad, comm_.size(), loss, std::sqrt(norm_squared), consecutive_);
  // Every rank counts the same skips (the flags are summed): one verdict, reported by rank 0.
  if (consecutive_ >= options_.max_consecutive_skips)
    throw_agreed_verdict(NumericalError(fmt::format(
        "option --max-consecutive-skips: {} training steps in a row had a non-finite loss or "
        "gradient norm (last at epoch {} step {}); stopping (lower --lr?)",
        consecutive_, epoch, step_in_epoch)));
  return true;
}

}  // namespace dp
