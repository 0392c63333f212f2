// When to write a checkpoint: at the end of every N-th epoch and of the run, and inside epochs
// every N optimizer steps and/or every M minutes. Time-based checkpoints follow rank 0's clock
// alone (the trainer shares its answer in the step's allreduce), so the ranks never disagree.
#pragma once

#include <cstdint>

namespace dp {

struct CheckpointPolicyOptions {
  int every_epochs = 1;       // 0: only at the end of the run
  int64_t every_steps = 0;    // 0: off
  double every_minutes = 0;   // 0: off
};

class CheckpointPolicy {
 public:
  CheckpointPolicy(const CheckpointPolicyOptions& options, double now_seconds);

  // After `global_step` optimizer updates in all (1-based count).
  bool steps_due(int64_t global_step) const;
  // On the caller's clock: has --checkpoint-every-minutes passed since the last checkpoint?
  bool time_due(double now_seconds) const;
  // At the end of epoch `epoch` (1-based); `last` is the run's final epoch.
  bool epoch_due(int64_t epoch, bool last) const;
  // A checkpoint was written at `now_seconds`: the minutes count from here.
  void saved(double now_seconds) { last_saved_ = now_seconds; }

 private:
  CheckpointPolicyOptions options_;
  double last_saved_;
};

}  // namespace dp
