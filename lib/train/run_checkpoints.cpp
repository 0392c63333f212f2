#include "train/run_checkpoints.h"

#include "core/log.h"
#include "core/timer.h"
#include "train/checkpoint_files.h"

namespace dp {

RunCheckpoints::RunCheckpoints(TrainingCheckpointer& checkpointer, const RunDirectory& run_dir,
                               bool writer, MetricsWriter* metrics, int keep,
                               const CheckpointPolicy& policy)
    : checkpointer_(checkpointer),
      run_dir_(run_dir),
      writer_(writer),
      metrics_(metrics),
      keep_(keep),
      policy_(policy) {}

void RunCheckpoints::save(const ResumePoint& point, const EpochTotals& totals,
                          CheckpointTrigger trigger) {
  if (metrics_) metrics_->flush_steps();
  const std::string latest = run_dir_.checkpoint();
  const std::string dir = run_dir_.path();
  // Only the writer needs the file's name.
  const std::string target =
      keep_ > 1 && writer_
          ? checkpoint_file_for(dir, {point.epochs_done, point.step_in_epoch, point.global_step})
          : latest;
  checkpointer_.save(target, point, totals, trigger);
  if (writer_ && keep_ > 1) {
    publish_checkpoint_as(target, latest);
    prune_named_checkpoints(dir, keep_);
  }
  policy_.saved(now_seconds());
  if (trigger != CheckpointTrigger::epoch)
    log::info("checkpoint ({}) at epoch {} step {}: {}", enum_name(trigger), point.epochs_done + 1,
              point.step_in_epoch, target);
}

}  // namespace dp
