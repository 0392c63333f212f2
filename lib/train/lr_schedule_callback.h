// The learning-rate schedule as a step callback: before each step the optimizer's rate
// becomes the schedule's value for the number of updates done so far (a pure function of the
// step, so a resumed run continues the same curve).
#pragma once

#include <memory>

#include "optim/lr_schedule.h"
#include "train/step_callback.h"

namespace dp {

class LrScheduleCallback final : public StepCallback {
 public:
  explicit LrScheduleCallback(std::unique_ptr<optim::LrSchedule> schedule)
      : schedule_(std::move(schedule)) {}
  void before_step(const StepPosition& at, optim::Optimizer& optimizer) override {
    optimizer.set_lr(schedule_->lr(at.global_step));
  }

 private:
  std::unique_ptr<optim::LrSchedule> schedule_;
};

}  // namespace dp
