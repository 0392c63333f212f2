// The run's schedule callbacks, built from the options: the learning rate every step
// (LrScheduleCallback), for onecycle with --onecycle-cycle-momentum (torch's default), every
// parameter group's momentum (MomentumScheduleCallback), and a FreezeCallback per --freeze.
// All are pure functions of the global step, so a resumed run continues the same curves.
#pragma once

#include <cstdint>
#include <memory>

#include "optim/lr_schedule.h"
#include "train/config.h"
#include "train/step_callback.h"

namespace dp {

// Sets every group's momentum before each step, as OneCycleLR(cycle_momentum=True) sets each
// param_group's; the step's SGD update then uses it (buf = m*buf + ...), as torch's does.
class MomentumScheduleCallback final : public StepCallback {
 public:
  explicit MomentumScheduleCallback(std::unique_ptr<optim::LrSchedule> momentum)
      : momentum_(std::move(momentum)) {}
  void before_step(const StepPosition& at, optim::Optimizer& optimizer) override {
    const auto m = static_cast<float>(momentum_->lr(at.global_step));
    for (optim::ParamGroup& group : optimizer.groups()) group.momentum = m;
  }

 private:
  std::unique_ptr<optim::LrSchedule> momentum_;
};

// The LR callback and, when the schedule cycles momentum, the momentum one, then a
// FreezeCallback per --freeze PATTERN:EPOCHS; logs what the schedule does (the step
// schedule's milestones, whether momentum cycles, the step unit). Throws UsageError for a
// schedule the options cannot make, Lookahead's included (one that would never update), so a
// run builds these before writing anything.
StepCallbacks schedule_callbacks(const TrainConfig& config, int64_t steps_per_epoch);

}  // namespace dp
