#include "train/schedule_callbacks.h"

#include <fmt/ranges.h>

#include "core/log.h"
#include "train/freeze_callback.h"
#include "train/lr_schedule_callback.h"
#include "train/param_groups.h"
#include "train/run_setup.h"
#include "train/schedule_options.h"

namespace dp {

namespace {

// The milestones at or past the run's last step, which it never reaches (torch's MultiStepLR
// is silent about them; a shortened run is the usual cause, so the log names them).
std::vector<double> unreached_milestones(const TrainConfig& c, int64_t steps_per_epoch) {
  std::vector<double> unreached;
  for (double m : c.lr_milestones)
    if (optim::epochs_to_steps(m, steps_per_epoch) >= total_steps(c, steps_per_epoch))
      unreached.push_back(m);
  return unreached;
}

std::string describe(const TrainConfig& c, int64_t steps_per_epoch) {
  std::string what(enum_name(c.lr_schedule));
  if (c.lr_schedule == optim::LrScheduleKind::step) {
    if (c.lr_milestones.empty()) {
      what += " (no milestones: constant; --lr-milestones sets them)";
    } else {
      what += fmt::format(" (x{} at epochs {}", c.lr_gamma, fmt::join(c.lr_milestones, ", "));
      const std::vector<double> unreached = unreached_milestones(c, steps_per_epoch);
      if (!unreached.empty())
        what += fmt::format(", of which {} at or past the run's end: never reached",
                            fmt::join(unreached, ", "));
      what += "; --lr-milestones sets them)";
    }
  } else if (c.lr_schedule == optim::LrScheduleKind::onecycle) {
    what += c.onecycle_cycle_momentum
                ? fmt::format(" (momentum cycled {} -> {} -> {}, --momentum unused)",
                              c.onecycle_max_momentum, c.onecycle_base_momentum,
                              c.onecycle_max_momentum)
                : fmt::format(" (momentum fixed at {})", c.momentum);
  }
  if (c.warmup_epochs > 0) what += fmt::format(", {} warm-up epochs", c.warmup_epochs);
  return what +
         (c.lr_step_unit == optim::StepUnit::epoch ? ", stepped per epoch" : ", stepped per step");
}

}  // namespace

StepCallbacks schedule_callbacks(const TrainConfig& config, int64_t steps_per_epoch) {
  // Lookahead (added by TrainingRun) is a schedule of its own: one that never updates would
  // end the run on the average's start, the initial weights.
  const int64_t steps = total_steps(config, steps_per_epoch);
  if (config.lookahead.every > steps)
    throw UsageError(fmt::format("option --lookahead-every: {} exceeds the run's {} steps: the "
                                 "average would never update and the run would end on its "
                                 "initial weights",
                                 config.lookahead.every, steps));
  StepCallbacks callbacks;
  callbacks.add(
      std::make_unique<LrScheduleCallback>(make_run_lr_schedule(config, steps_per_epoch)));
  if (auto momentum = make_run_momentum_schedule(config, steps_per_epoch))
    callbacks.add(std::make_unique<MomentumScheduleCallback>(std::move(momentum)));
  log::info("lr schedule: {}", describe(config, steps_per_epoch));
  for (const std::string& value : config.freeze) {
    const FreezeSpec freeze = parse_freeze(value);
    if (freeze.after_epochs > 0)
      callbacks.add(std::make_unique<FreezeCallback>(freeze_group_name(freeze.pattern),
                                                     freeze.after_epochs));
    log::info("--freeze {}: not updated {}", freeze.pattern,
              freeze.after_epochs == 0 ? std::string("for the whole run")
                                       : fmt::format("after epoch {}", freeze.after_epochs));
  }
  return callbacks;
}

}  // namespace dp
