#include "train/schedule_callbacks.h"

#include <fmt/ranges.h>

#include "core/log.h"
#include "train/freeze_callback.h"
#include "train/lr_schedule_callback.h"
#include "train/param_groups.h"
#include "train/run_setup.h"

namespace dp {

namespace {

std::string describe(const TrainConfig& c) {
  std::string what = c.lr_schedule;
  if (c.lr_schedule == "step") {
    what += c.lr_milestones.empty()
                ? " (no milestones: constant; --lr-milestones sets them)"
                : fmt::format(" (x{} at epochs {}; --lr-milestones sets them)", c.lr_gamma,
                              fmt::join(c.lr_milestones, ", "));
  } else if (c.lr_schedule == "onecycle") {
    what += c.onecycle_cycle_momentum
                ? fmt::format(" (momentum cycled {} -> {} -> {}, --momentum unused)",
                              c.onecycle_max_momentum, c.onecycle_base_momentum,
                              c.onecycle_max_momentum)
                : fmt::format(" (momentum fixed at {})", c.momentum);
  }
  if (c.warmup_epochs > 0) what += fmt::format(", {} warm-up epochs", c.warmup_epochs);
  return what + (c.lr_step_unit == "epoch" ? ", stepped per epoch" : ", stepped per step");
}

}  // namespace

StepCallbacks schedule_callbacks(const TrainConfig& config, int64_t steps_per_epoch) {
  StepCallbacks callbacks;
  const optim::LrScheduleSpec spec = lr_schedule_spec(config, steps_per_epoch);
  callbacks.add(std::make_unique<LrScheduleCallback>(optim::make_lr_schedule(spec)));
  if (auto momentum = optim::make_momentum_schedule(spec))
    callbacks.add(std::make_unique<MomentumScheduleCallback>(std::move(momentum)));
  log::info("lr schedule: {}", describe(config));
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
