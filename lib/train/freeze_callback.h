// --freeze PATTERN:EPOCHS as a step callback: the group "freeze:PATTERN" trains for the first
// EPOCHS epochs and is frozen from epoch EPOCHS + 1 on (airbench94's whitening bias: EPOCHS =
// 3, as its `requires_grad = epoch < 3` over 0-based epochs). A function of the step's epoch,
// so a resumed run freezes the same way.
#pragma once

#include <string>

#include "train/step_callback.h"

namespace dp {

class FreezeCallback final : public StepCallback {
 public:
  FreezeCallback(std::string group, int64_t after_epochs)
      : group_(std::move(group)), after_epochs_(after_epochs) {}
  void before_step(const StepPosition& at, optim::Optimizer& optimizer) override {
    optimizer.group(group_).frozen = at.epoch > after_epochs_;
  }

 private:
  std::string group_;
  int64_t after_epochs_;
};

}  // namespace dp
