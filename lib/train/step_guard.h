// Guards each training step against non-finite numbers and against hangs, from outside the
// step's own logic (TrainStep calls it at two points of a step):
// - before backward: the heartbeat of the collective watchdog (--collective-timeout);
// - after the gradients are averaged, before the optimizer: every rank checks its loss and its
//   gradient norm, and the ranks agree (one allreduce of a flag) to skip the update together
//   when any of them saw a NaN or Inf. Skipped steps leave the parameters and the momentum
//   untouched (BatchNorm running statistics of that forward pass do change, as with PyTorch's
//   GradScaler) and are counted per epoch by the epoch driver (checkpoints keep the count);
//   after --max-consecutive-skips in a row the job stops with the numerical exit code (the
//   run of skips so far is kept in checkpoints too, so a resume goes on counting it).
#pragma once

#include <cstdint>

#include "backend/backend.h"
#include "comm/collective_watchdog.h"
#include "comm/communicator.h"
#include "core/tensor.h"
#include "train/config.h"

namespace dp {

struct StepGuardOptions {
  int max_consecutive_skips = 5;  // stop after this many skipped steps in a row
};

StepGuardOptions step_guard_options(const TrainConfig& config);

class StepGuard {
 public:
  // `watchdog` (the job's, --collective-timeout) outlives the guard.
  StepGuard(const StepGuardOptions& options, Backend& backend, Communicator& comm,
            CollectiveWatchdog& watchdog);

  // After the forward pass, before backward: the step is making progress.
  void heartbeat() { watchdog_.beat(); }
  // After the gradients are averaged, before the update: true when the ranks agreed to skip
  // it. Throws NumericalError (on every rank alike) after too many skips in a row.
  bool skip_update(float loss, const Tensor& grads, int64_t epoch, int64_t step_in_epoch);
  // Updates skipped in a row up to now: for a checkpoint, and restored from one on resume.
  int64_t consecutive_skips() const { return consecutive_; }
  void resume_consecutive_skips(int64_t skips) { consecutive_ = skips; }

 private:
  StepGuardOptions options_;
  Backend& backend_;
  Communicator& comm_;
  CollectiveWatchdog& watchdog_;
  int64_t consecutive_ = 0;
};

}  // namespace dp
