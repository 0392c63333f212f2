// A whole training run's state in one checkpoint file, saved and loaded collectively: the
// model (parameters, rank 0's BN statistics under torchvision names, SGD momentum), every
// rank's own BN statistics (they differ: BN is local to each rank, and evaluation uses them),
// with --lookahead-every the Lookahead average (of the parameters, and rank 0's and every
// rank's of the BN statistics, which differ as the statistics do), every rank's running sums
// of the current epoch, the ResumePoint, and what identifies the run's setup. Loading refuses
// a checkpoint that does not fit this run, with a message naming --resume: another model,
// dataset, seed, global batch size, steps per epoch or Lookahead settings, or no average. A
// checkpoint resumes on any number of ranks that divides the global batch, mid-epoch too:
// the steps done consumed the first steps x batch positions of the epoch's order whatever the
// world size was (data/distributed_sampler.h), and the rest re-splits over the new ranks.
#pragma once

#include <array>
#include <string>

#include "comm/communicator.h"
#include "core/option_enum.h"
#include "io/checkpoint.h"
#include "nn/model.h"
#include "train/lookahead_settings.h"
#include "train/model_state.h"
#include "train/trained_data.h"
#include "train/training_state.h"

namespace dp {

// Why a checkpoint was written; its name (enum_name) is the file's `trigger` attribute (file
// format).
enum class CheckpointTrigger { epoch, steps, minutes, signal };
constexpr std::array<NamedValue<CheckpointTrigger>, 4> enum_names(CheckpointTrigger) {
  return {{{CheckpointTrigger::epoch, "epoch"},
           {CheckpointTrigger::steps, "steps"},
           {CheckpointTrigger::minutes, "minutes"},
           {CheckpointTrigger::signal, "signal"}}};
}

// What a checkpoint records about the run's setup, and a resume checks.
struct RunIdentity {
  std::string arch, dataset;
  std::string shortcut;  // resolved: "A" or "B"; "auto" for a network without (nn::shortcut_name)
  int64_t num_classes = 0, in_channels = 0;
  uint64_t seed = 0;
  int64_t batch_size = 0;       // global
  int64_t steps_per_epoch = 0;  // ceil(train size / batch), capped (--drop-last: per world)
  int64_t epochs = 0;           // of the whole run
  int64_t steps_to_run = 0;     // the updates this run trains (steps_to_run in config.h)
  bool sync_bn = false;  // recorded only: a run may resume with or without --sync-bn
  bool normalize = true;  // --normalize: a resume needs the same; `dptrain eval` applies it
  // --stop-after-steps: such a run's last epoch may be cut short, so its checkpoints can be
  // evaluated but not resumed.
  int64_t stop_after_steps = 0;
  // --lookahead-every/base/power/start-epoch/each-epoch (every 0: off): a resume needs the
  // same, and then the average.
  LookaheadSettings lookahead;
  TrainedData data;  // a resume needs the same classes, training-set size and sources
};

class TrainingCheckpointer {
 public:
  TrainingCheckpointer(nn::Model& model, Tensor& momentum, Communicator& comm, RunIdentity identity);

  // With --lookahead-every: the average that save() writes and load() restores (every rank's
  // own; it must outlive this object). Before the first save or load.
  void track_lookahead(LookaheadAverage& average);

  // Collective: every rank calls it at the same step. Rank 0 writes `path` (tmp, fsync,
  // rename); it returns on every rank only once the file is in place. `trigger` is recorded
  // for the curious.
  void save(const std::string& path, const ResumePoint& point, const EpochTotals& mine,
            CheckpointTrigger trigger);

  // Collective: every rank reads `path` (the run directory is on a file system that all ranks
  // see) into the model, optimizer and Lookahead average, and gets its own epoch sums (the
  // parameters, momentum and the parameters' average are then the same bits on every rank).
  // On the same number of ranks every rank continues with its own BN statistics, their
  // average and sums; on another, every rank starts from rank 0's BN statistics, their
  // average and timings, and rank 0 carries the epoch's loss, accuracy and sample counts
  // summed over the old ranks (so the epoch's means stay whole).
  ResumePoint load(const std::string& path, EpochTotals& mine);

 private:
  void check_compatible(const std::string& path, const CheckpointMeta& meta) const;
  // A checkpoint any run may continue: format, sample order, not cut short.
  static void check_resumable(const std::string& path, const CheckpointMeta& meta);
  // Written by this run's model, data, seed, batch and normalisation.
  void check_same_run(const std::string& path, const CheckpointMeta& meta) const;
  // Its position lies within this run's steps, on its steps per epoch where mid-epoch.
  void check_position(const std::string& path, const CheckpointMeta& meta) const;
  void check_lookahead(const std::string& path, const CheckpointMeta& meta) const;
  // The average is tracked exactly when the run has Lookahead (a wiring error otherwise).
  void check_lookahead_tracked() const;
  // The attributes save() writes: where the run stands, what it is, and its Lookahead settings.
  CheckpointMeta checkpoint_meta(const ResumePoint& point, int world,
                                 CheckpointTrigger trigger) const;

  ModelState state_;
  LookaheadAverage* lookahead_ = nullptr;
  Communicator& comm_;
  RunIdentity identity_;
  int64_t buffer_count_;
};

}  // namespace dp
