// Writing a run's checkpoints: when (the CheckpointPolicy it owns) and where (checkpoint.h5,
// or with --keep-checkpoints K > 1 a named checkpoint-e*-s*.h5 published as checkpoint.h5 and
// the named ones pruned to the newest K). The /steps rows up to the checkpoint reach
// metrics.h5 before the checkpoint exists, so a crash in between leaves rows the resume
// drops, never a gap.
#pragma once

#include <string>

#include "io/metrics_writer.h"
#include "train/checkpoint_policy.h"
#include "train/run_directory.h"
#include "train/training_checkpoint.h"

namespace dp {

class RunCheckpoints {
 public:
  // `writer`: this rank (rank 0) writes the files; `metrics` may be null (on the others).
  RunCheckpoints(TrainingCheckpointer& checkpointer, const RunDirectory& run_dir, bool writer,
                 MetricsWriter* metrics, int keep, const CheckpointPolicy& policy);

  // Collective.
  void save(const ResumePoint& point, const EpochTotals& totals, CheckpointTrigger trigger);
  const CheckpointPolicy& policy() const { return policy_; }

 private:
  TrainingCheckpointer& checkpointer_;
  const RunDirectory& run_dir_;
  bool writer_;
  MetricsWriter* metrics_;
  int keep_;
  CheckpointPolicy policy_;
};

}  // namespace dp
