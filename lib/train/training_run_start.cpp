// How a TrainingRun starts: from scratch, or from the checkpoint --resume names, which every
// rank must have found the same; metrics.h5 opened new or reopened at the checkpoint; and a
// resumed run's abandoned branch (checkpoints past it, or corrupted ones --resume auto skipped)
// set aside.
#include <algorithm>
#include <filesystem>
#include <functional>
#include <utility>

#include "comm/agreed_verdict.h"
#include "comm/mpi_strings.h"
#include "core/log.h"
#include "train/build_info.h"
#include "train/same_config_check.h"
#include "train/training_run.h"

namespace dp {

namespace {

// Calls `action` after the run's first step, once.
class AfterFirstStep final : public StepCallback {
 public:
  explicit AfterFirstStep(std::function<void()> action) : action_(std::move(action)) {}
  void after_step(const StepPosition&, optim::Optimizer&, bool) override {
    if (action_) std::exchange(action_, nullptr)();
  }

 private:
  std::function<void()> action_;
};

}  // namespace

TrainingRun::FoundCheckpoint TrainingRun::agreed_resume_checkpoint() {
  // The run directory must be on a file system every rank sees; each rank resolves --resume
  // itself, and the ranks check that they found the same checkpoint: its position (two can
  // share a step: a stop after an epoch's last step, and the epoch's end) and size. Paths may
  // differ (a relative one under another working directory).
  comm_->barrier();  // rank 0 has created the run directory
  FoundCheckpoint found;
  std::string identity = "none", description = "no checkpoint";
  run_agreeing([&] {  // a checkpoint every rank finds damaged: one line
    found.path = resolve_resume(config_.resume, run_dir_.path(), &found.skipped);
    if (found.path.empty()) return;
    found.position = CheckpointFile{found.path, read_checkpoint_meta(found.path)}.position();
    const auto [epochs, in_epoch, steps] = found.position;
    const auto bytes = std::filesystem::file_size(found.path);
    identity = fmt::format("{} {} {} {}", epochs, in_epoch, steps, bytes);
    description = fmt::format("{} ({} epochs and {} optimizer steps done, {} bytes)", found.path,
                              epochs, steps, bytes);
  });
  const auto all = allgather_strings({identity, description});
  for (size_t r = 1; r < all.size(); ++r)
    if (all[r][0] != all[0][0])
      throw_agreed_verdict(DataError(fmt::format(
          "option --resume: rank {} found {}, rank 0 {}: every rank must resume from the same "
          "checkpoint (is the run directory on a file system every node sees?)",
          r, all[r][1], all[0][1])));
  return found;
}

void TrainingRun::reopen_metrics(const std::string& resumed_from, const ResumePoint& point,
                                 const std::map<std::string, std::string>& effective) {
  // Whose history it is, before reopen checks and trims it against the checkpoint.
  const auto previous = MetricsWriter::last_job_options(run_dir_.metrics(), effective);
  if (const std::string other = other_run_problem(previous, effective); !other.empty())
    throw UsageError(
        fmt::format("option --resume: {} records another run ({}): resume {} into its own run "
                    "directory, or give this one a --run-name of its own",
                    run_dir_.metrics(), other, resumed_from));
  // /steps rows up to the checkpoint are kept; where the steps per epoch changed with the
  // world size and this run counts fewer, the rows past its count go (their numbers come
  // again), so the steps stay increasing.
  const int64_t steps_kept = std::min(point.checkpoint_step, point.global_step);
  metrics_ = MetricsWriter::reopen(run_dir_.metrics(), point.epochs_done, steps_kept,
                                   data_.steps_per_epoch(),
                                   resume_record(resumed_from, point, comm_->size()), effective);
  if (const std::string changed = changed_options(previous, effective); !changed.empty())
    log::info(
        "note: options changed since the run's previous job (the run continues with this "
        "job's): {}",
        changed);
}

void TrainingRun::open_metrics(const std::string& resumed_from, const ResumePoint& point) {
  if (!writer_) return;
  const auto effective =
      recorded_options(config_, run_name_, comm_->size(), choice_.reason, grad_comm_.reason);
  if (!config_.overwrite && std::filesystem::exists(ReplacedRun::folder_in(run_dir_.path())))
    log::info(
        "note: {} holds a run that a killed --overwrite job had set aside; this run "
        "leaves it there (delete it, or the next --overwrite puts it back first)",
        ReplacedRun::folder_in(run_dir_.path()));
  if (!resumed_from.empty() && std::filesystem::exists(run_dir_.metrics())) {
    reopen_metrics(resumed_from, point, effective);
    return;
  }
  if (!resumed_from.empty())
    log::info("note: {} has no metrics.h5; a new one starts at epoch {}", run_dir_.path(),
              point.epochs_done + 1);
  else if (resumes_automatically() && std::filesystem::exists(run_dir_.metrics()))
    log::info("note: --resume auto found no checkpoint in {}; its metrics.h5 is kept as {} and "
              "a new one starts",
              run_dir_.path(), run_dir_.set_metrics_aside());
  if (config_.overwrite) {  // the new run is ready to write
    replaced_ = run_dir_.set_replaced_run_aside();
    callbacks_.add(std::make_unique<AfterFirstStep>([this] { replaced_->discard(); }));
  }
  metrics_ = std::make_unique<MetricsWriter>(run_dir_.metrics(), effective, build_info(),
                                             data_.steps_per_epoch());
}

ResumePoint TrainingRun::start_or_resume(EpochTotals& resumed_totals) {
  ResumePoint point;
  const bool fresh = config_.resume.kind == ResumeRequest::Kind::none;
  const FoundCheckpoint found = fresh ? FoundCheckpoint{} : agreed_resume_checkpoint();
  const std::string& path = found.path;
  if (path.empty()) {
    if (resumes_automatically())
      log::info("--resume auto: no checkpoint in {} yet, starting from scratch", run_dir_.path());
  } else {
    run_agreeing([&] { point = checkpointer_.load(path, resumed_totals); });
    // SGD's first-update rule is spent once an update was done: a NaN-skipped step does none
    // (nor does torch's skipped optimizer.step), and none was done exactly where every step so
    // far was skipped, the trailing run of skips being all of them.
    optimizer_.set_updates(std::max<int64_t>(point.global_step - point.consecutive_skips, 0));
    guard_.resume_consecutive_skips(point.consecutive_skips);
    log::info("resumed from {}: {} epochs and {} steps of epoch {} done ({} steps in all)", path,
              point.epochs_done, point.step_in_epoch, point.epochs_done + 1, point.global_step);
  }
  open_metrics(path, point);
  if (!path.empty()) start_branch_at(found);
  // A reopened metrics.h5, after the superseded checkpoints are set aside: a crash between the
  // two must not leave --resume auto a checkpoint of the abandoned branch beside this branch's
  // history. (A new one was published by its constructor.)
  if (metrics_ && !path.empty()) metrics_->publish();
  return point;
}

// A resume starts a branch of the run at `resumed`. The checkpoints of the run directory past
// it belong to the abandoned one (an explicit --resume of an older checkpoint), and those
// --resume auto skipped failed verification: --resume auto (after a crash) and pruning would
// take them for this branch's, so they are set aside, not deleted. Where none is left after an
// explicit --resume, the file (another directory's, say) becomes the directory's checkpoint.h5,
// so that a crash before this branch's first checkpoint resumes here, not from scratch. Only once
// every rank has loaded the checkpoint and metrics.h5 was taken up (reopened in memory, published
// after this; a run directory without one has a new one already): a refused resume changes nothing.
void TrainingRun::start_branch_at(const FoundCheckpoint& resumed) const {
  comm_->barrier();
  if (!writer_) return;
  // The file's own position, not the resume point's: where the checkpoint's epoch had all its
  // steps done (a stop at its last step), the latter's steps into the epoch are this run's count.
  const std::string& path = resumed.path;
  if (resumes_automatically()) {  // the resumed checkpoint is in the directory
    for (const std::string& corrupted : resumed.skipped)
      log::info("note: --resume auto: {} did not pass verification; set aside as {}", corrupted,
                run_dir_.set_aside(corrupted, "corrupted"));
    return;
  }
  for (const std::string& newer : checkpoints_after(run_dir_.path(), resumed.position))
    log::info("note: --resume {}: {} is past it; set aside as {}", path, newer,
              run_dir_.set_aside(newer));
  if (!find_checkpoints(run_dir_.path()).empty()) return;
  publish_checkpoint_as(path, run_dir_.checkpoint());
  log::info("note: --resume {}: linked as {}, where --resume auto finds this run's start", path,
            run_dir_.checkpoint());
}

}  // namespace dp
