// The epoch driver: runs a run's epochs step by step around a TrainStep, and owns what
// happens between steps: the per-step callbacks, the ranks' agreement on loss, accuracy,
// stop signals and timed checkpoints, the /steps rows and progress lines, mid-epoch
// checkpoints and preemption, and at an epoch's end its statistics, the evaluation, the
// /history row and the epoch checkpoint.
//
// Adding a recipe feature needs no edit here: per-step behaviour is a StepCallback, the
// update rule and its parameter groups are the Optimizer's.
#pragma once

#include <cstdint>

#include "comm/communicator.h"
#include "data/hdf5_dataset.h"
#include "io/metrics_writer.h"
#include "nn/model.h"
#include "optim/optimizer.h"
#include "train/config.h"
#include "train/evaluator.h"
#include "train/preempted_exit.h"
#include "train/preemption_signal.h"
#include "train/progress.h"
#include "train/run_checkpoints.h"
#include "train/step_agreement.h"
#include "train/step_callback.h"
#include "train/train_data.h"
#include "train/train_step.h"
#include "train/training_state.h"

namespace dp {

// What the driver works with; every reference outlives it. `metrics` is null off rank 0.
struct EpochDriverParts {
  const TrainConfig& config;
  Communicator& comm;
  TrainData& data;
  TrainStep& step;
  optim::Optimizer& optimizer;
  StepCallbacks& callbacks;
  StepGuard& guard;
  RunCheckpoints& checkpoints;
  MetricsWriter* metrics;
  nn::Model& model;
  const data::HDF5Dataset& test_set;
  EvalOptions eval_options;
  const PreemptionSignal& signal;
  const RequeuePlan& requeue;
};

class EpochDriver {
 public:
  // Starts counting at `global_step` optimizer steps (a resumed run's).
  EpochDriver(EpochDriverParts parts, int64_t global_step);

  // Runs epoch `epoch` (1-based) from step `first_step` with `totals` already summed (a
  // resumed epoch's). Returns false when the ranks agreed to stop: the checkpoint is then
  // written and the caller returns ExitCode::preempted.
  bool run_epoch(int64_t epoch, int64_t first_step, EpochTotals totals);
  // The last evaluation of the test split (the final one after the last epoch).
  const EvaluationResult& last_eval() const { return last_eval_; }
  void evaluate_now();

 private:
  // The epoch being run: its number (1-based), its steps and when it started (a resumed
  // epoch's time so far counted in; moved on by each checkpoint written between its steps, so
  // that its time and images/s are training's, as for the checkpoint at its end).
  struct EpochSpan {
    int64_t epoch, steps;
    double start;
  };
  // How the epoch's steps ended: the run left (a stop, checkpointed), or every step ran, with
  // a timed or counted checkpoint due at the epoch's end.
  struct StepsEnd {
    bool left_run = false, checkpoint_due = false;
  };
  StepsEnd run_steps(EpochSpan& span, int64_t first_step, EpochTotals& totals);
  // After the steps: statistics, evaluation, the /history row, the epoch's checkpoint; false
  // when the run stops (its end pending where the evaluation was abandoned).
  bool finish_epoch(EpochSpan& span, bool resumed_into_end, bool checkpoint_due,
                    EpochTotals& totals);
  // Step `step` (0-based) of the epoch's `steps` and its bookkeeping; returns what the ranks
  // agreed on after it.
  StepAgreement train_step(int64_t epoch, int64_t step, int64_t steps, EpochTotals& totals);
  // A checkpoint after step `step` (0-based), written for `trigger` (a signal, --checkpoint-
  // every-minutes or -steps); with `stop`, the run then leaves (preempted exit) and this returns
  // false. `not_training` seconds since the span's start are left out of its elapsed time.
  bool checkpoint_between_steps(EpochSpan& span, int64_t step, CheckpointTrigger trigger, bool stop,
                                EpochTotals& totals, double not_training);
  // The epoch's end: checkpoint as due and agree on a stop; false to stop.
  bool end_epoch(int64_t epoch, bool checkpoint_due);
  EpochRecord epoch_record(int64_t epoch, const EpochTotals& totals, double epoch_start);
  // The epoch's evaluation, when one is due, into `record`; false when a stop signal came
  // during it and the ranks abandoned it (the run's last too; not where
  // finishes_despite_stop, nor one `resumed_into`: the epoch's steps were done before this
  // job started, which runs only its end).
  bool evaluate_into(EpochRecord& record, bool resumed_into);
  bool last_epoch(int64_t epoch) const {
    return epoch == last_epoch_of_run(parts_.config, parts_.data.steps_per_epoch());
  }
  // Whether a stop at the run's last step or in its last evaluation lets the run finish
  // instead of checkpointing its end for a later job: where no job will continue it (a
  // --stop-after-steps run, which none can resume; a Slurm job that will not be requeued).
  bool finishes_despite_stop(int64_t epoch) const;

  EpochDriverParts parts_;
  Progress progress_;
  int64_t global_step_;
  EvaluationResult last_eval_;
  int64_t evaluated_ = 0;  // the epoch whose end ran the last evaluation
};

}  // namespace dp
