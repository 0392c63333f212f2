// Per-step callbacks: small objects the epoch driver calls around every training step, so a
// recipe feature that acts between updates (the LR and momentum schedules, freezing a parameter
// group at an epoch, Lookahead) is one class of its own, added to the list where the run is
// assembled, not a branch in the training loop.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "optim/optimizer.h"

namespace dp {

// Where a step stands in the run.
struct StepPosition {
  int64_t epoch = 1;          // 1-based
  int64_t step_in_epoch = 0;  // 0-based index of this step in its epoch
  int64_t global_step = 0;    // optimizer steps taken before this one (the schedule's input)
};

class StepCallback {
 public:
  virtual ~StepCallback() = default;
  // Before the step's forward pass (the LR schedule sets the optimizer's rate here). What it
  // sets must follow from the position alone: a run resumed between an epoch's last step and
  // the epoch's end calls it again for that step.
  virtual void before_step(const StepPosition&, optim::Optimizer&) {}
  // After the step; `updated` is false when the NaN guard skipped its update.
  virtual void after_step(const StepPosition&, optim::Optimizer&, bool /*updated*/) {}
};

// The callbacks of a run, called in the order they were added.
class StepCallbacks {
 public:
  void add(std::unique_ptr<StepCallback> callback) { callbacks_.push_back(std::move(callback)); }
  void before_step(const StepPosition& at, optim::Optimizer& optimizer) {
    for (auto& c : callbacks_) c->before_step(at, optimizer);
  }
  void after_step(const StepPosition& at, optim::Optimizer& optimizer, bool updated) {
    for (auto& c : callbacks_) c->after_step(at, optimizer, updated);
  }

 private:
  std::vector<std::unique_ptr<StepCallback>> callbacks_;
};

}  // namespace dp
