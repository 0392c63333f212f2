// `dptrain train`: assembles a run from a TrainConfig (backend, data, model, optimizer, step,
// outputs), continues from a checkpoint when asked (--resume), and hands the epochs to the
// EpochDriver (train/epoch_driver.h). Rank 0 writes metrics.h5 and the checkpoints into the
// run directory.
//
// Where a change goes: the step's arithmetic in TrainStep (train/train_step.h), the update
// rule and parameter groups in optim::Optimizer with rules from train/param_groups.h, per-step
// recipe behaviour as a StepCallback (train/step_callback.h), augmentation and evaluation
// views in train/augmentation.h, test-only behaviour in train/test_hooks.h.
#pragma once

#include <memory>
#include <vector>

#include "comm/communicator.h"
#include "train/config.h"
#include "train/param_groups.h"
#include "train/step_callback.h"

namespace dp {

class MpiSession;
class PreemptionSignal;

// What a recipe adds to the run its options describe.
struct RecipeAdditions {
  // Parameter groups that take their parameters before the default group does.
  std::vector<ParamGroupRule> groups;
  // Called after the option-driven callbacks (LR, momentum, freezes, Lookahead), in this order.
  std::vector<std::unique_ptr<StepCallback>> callbacks;
};

// Checks that every rank runs the same configuration on the same data, then trains. Returns
// the process exit code: 0, or ExitCode::preempted after `signal` has fired and its checkpoint
// is written. Throws dp::Error otherwise.
int train(const TrainConfig& config, const MpiSession& mpi, const PreemptionSignal& signal,
          RecipeAdditions additions = {});

}  // namespace dp
