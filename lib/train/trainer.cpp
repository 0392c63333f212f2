#include "train/trainer.h"

#include <algorithm>
#include <filesystem>
#include <functional>
#include <utility>

#include "comm/collective_watchdog.h"
#include "comm/comm_choice.h"
#include "comm/fault_injection.h"
#include "comm/gradient_reducer.h"
#include "comm/mpi_session.h"
#include "comm/mpi_strings.h"
#include "core/log.h"
#include "core/timer.h"
#include "data/hdf5_dataset.h"
#include "io/metrics_writer.h"
#include "nn/model.h"
#include "train/backend_choice.h"
#include "train/build_info.h"
#include "train/checkpoint_files.h"
#include "train/comm_stats_exchange.h"
#include "train/epoch_driver.h"
#include "train/lookahead_callback.h"
#include "train/run_setup.h"
#include "train/same_config_check.h"
#include "train/same_input_check.h"
#include "train/schedule_callbacks.h"
#include "train/training_checkpoint.h"

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

// One training run. The constructor builds everything (every rank validates the data before
// step 1, so a bad file stops all of them); run() resumes if asked and trains to the end or to
// a stop signal.
class TrainingRun {
 public:
  TrainingRun(const TrainConfig& config, const PreemptionSignal& signal, const MpiSession& mpi,
              CollectiveWatchdog& watchdog, RecipeAdditions additions);
  int run();

 private:
  // Loads the checkpoint --resume names, if any, and opens metrics.h5 accordingly.
  ResumePoint start_or_resume(EpochTotals& resumed_totals);
  // The checkpoint --resume finds ("" for none) and its own position in the run.
  struct FoundCheckpoint {
    std::string path;
    CheckpointPosition position;
    std::vector<std::string> skipped;  // --resume auto's corrupted checkpoints (this rank's)
  };
  FoundCheckpoint agreed_resume_checkpoint();
  void start_branch_at(const FoundCheckpoint& resumed) const;
  bool resumes_automatically() const {
    return config_.resume.kind == ResumeRequest::Kind::automatic;
  }
  void open_metrics(const std::string& resumed_from, const ResumePoint& point);
  // A resumed run's metrics.h5 continued: refused where it records another run; the options
  // changed since its previous job logged.
  void reopen_metrics(const std::string& resumed_from, const ResumePoint& point,
                      const std::map<std::string, std::string>& effective);
  void start_driver(const ResumePoint& start);
  int finish(const ResumePoint& start);
  void log_start() const;
  std::string sync_bn_note() const;

  const TrainConfig& config_;
  const PreemptionSignal& signal_;
  std::unique_ptr<Communicator> comm_;
  bool writer_;  // rank 0 writes the run's files
  data::HDF5Dataset train_set_, test_set_;
  BackendChoice choice_;
  std::unique_ptr<nn::Model> model_;
  CommStatsExchange stats_exchange_;  // --sync-bn's, over comm_
  CommChoice grad_comm_;
  std::unique_ptr<GradientReducer> reducer_;
  TrainData data_;
  EvalOptions eval_options_;  // made before the run directory: a view the data cannot take stops
                              // the run before anything is written
  optim::Optimizer optimizer_;
  StepCallbacks callbacks_;
  StepGuard guard_;
  std::unique_ptr<TestHooks> hooks_;
  TrainStep step_;
  TrainingCheckpointer checkpointer_;
  RequeuePlan requeue_plan_;  // what a stop signal does to the Slurm job
  std::string run_name_;
  RunDirectory run_dir_;
  // --overwrite's replaced run, until the first step is done (rank 0 only); destroyed after
  // metrics_, so a failed start's metrics.h5 is closed when the replaced one comes back.
  std::unique_ptr<ReplacedRun> replaced_;
  std::unique_ptr<MetricsWriter> metrics_;  // rank 0 only
  std::unique_ptr<RunCheckpoints> checkpoints_;
  std::unique_ptr<EpochDriver> driver_;
};

TrainingRun::TrainingRun(const TrainConfig& config, const PreemptionSignal& signal,
                         const MpiSession& mpi, CollectiveWatchdog& watchdog,
                         RecipeAdditions additions)
    : config_(config),
      signal_(signal),
      comm_(make_mpi_communicator()),
      writer_(comm_->rank() == 0),
      train_set_(config.data, "train"),
      test_set_(config.data, "test"),
      choice_(agree_on_backend(
          choose_backend(config, mpi.local_rank(), mpi.local_size(), config.arch), *comm_)),
      model_(nn::make_model(model_spec(config, train_set_), *choice_.backend)),
      stats_exchange_(*comm_),
      // Gradients are averaged in buckets whose allreduce starts from the model's grad-ready
      // hook, overlapping the rest of backward.
      grad_comm_(choose_gradient_communicator(config.comm, model_->grads().device(),
                                              choice_.backend->compute_stream(),
                                              config.collective_timeout)),
      reducer_(make_gradient_reducer(*model_, *grad_comm_.comm, config.bucket_mb)),
      data_(train_set_, config, comm_->size(), comm_->rank(),
            augments_on_backend(config.augment_on, *choice_.backend)),
      eval_options_(eval_options(config, data_, test_set_)),
      optimizer_(make_optimizer(config, *model_, std::move(additions.groups))),
      callbacks_(schedule_callbacks(config, data_.steps_per_epoch())),
      guard_(step_guard_options(config), *choice_.backend, *comm_, watchdog),
      hooks_(make_test_hooks(config, *choice_.backend, comm_->rank(), comm_->size(), signal)),
      step_(*model_, train_step_options(config, data_, comm_->size()), *reducer_, *grad_comm_.comm,
            guard_, optimizer_, *hooks_),
      checkpointer_(*model_, optimizer_.momentum_buffer(), *comm_,
                    run_identity(config, train_set_, data_.steps_per_epoch(), comm_->size())),
      requeue_plan_(plan_requeue(config, *comm_)),
      run_name_(run_name(config, train_set_, requeue_plan_)),
      run_dir_(config.output_dir, run_name_, existing_run_policy(config), writer_) {
  eval_options_.on_batch = [this, &watchdog] {
    watchdog.beat();  // a long evaluation is progress
    hooks_->after_eval_batch();
  };
  apply_whiten_init(config, *model_, train_set_);  // before Lookahead's snapshot
  inject_fault_if_due({config.fail_at_step, config.fail_rank, config.fail_mode}, comm_->rank(),
                      kStartupFaultStep);
  broadcast_state(*model_, *grad_comm_.comm);
  if (sync_bn_active(config, comm_->size())) model_->store().set_stats_exchange(&stats_exchange_);
  model_->store().set_grad_ready_hook(
      [this](nn::ParameterStore::Id id) { reducer_->mark_ready(id); });
  if (config.lookahead.every > 0) {
    auto lookahead = std::make_unique<LookaheadCallback>(
        *model_, LookaheadOptions{config.lookahead, total_steps(config, data_.steps_per_epoch()),
                                  data_.steps_per_epoch()});
    checkpointer_.track_lookahead(lookahead->average());  // a resume overwrites the snapshot
    callbacks_.add(std::move(lookahead));
  }
  for (auto& callback : additions.callbacks) callbacks_.add(std::move(callback));
}

TrainingRun::FoundCheckpoint TrainingRun::agreed_resume_checkpoint() {
  // The run directory must be on a file system every rank sees; each rank resolves --resume
  // itself, and the ranks check that they found the same checkpoint: its position (two can
  // share a step: a stop after an epoch's last step, and the epoch's end) and size. Paths may
  // differ (a relative one under another working directory).
  comm_->barrier();  // rank 0 has created the run directory
  FoundCheckpoint found;
  found.path = resolve_resume(config_.resume, run_dir_.path(), &found.skipped);
  std::string identity = "none", description = "no checkpoint";
  if (!found.path.empty()) {
    found.position = CheckpointFile{found.path, read_checkpoint_meta(found.path)}.position();
    const auto [epochs, in_epoch, steps] = found.position;
    const auto bytes = std::filesystem::file_size(found.path);
    identity = fmt::format("{} {} {} {}", epochs, in_epoch, steps, bytes);
    description = fmt::format("{} ({} epochs and {} optimizer steps done, {} bytes)", found.path,
                              epochs, steps, bytes);
  }
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
  auto effective = config_.effective;
  effective["run-name"] = run_name_;
  effective["world-size"] = std::to_string(comm_->size());
  effective["backend"] = choice_.reason;
  effective["gradient-comm"] = grad_comm_.reason;
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
    point = checkpointer_.load(path, resumed_totals);
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

void TrainingRun::log_start() const {
  log::info("dptrain {}: {} on {} ({} train / {} test, {} classes), {} rank{} x batch {}, {}",
            DPTRAIN_VERSION, config_.arch, config_.data, train_set_.size(), test_set_.size(),
            train_set_.num_classes(), comm_->size(), comm_->size() == 1 ? "" : "s",
            data_.local_batch(), choice_.reason);
  // A network with shortcuts has its kind resolved; one without (airbench) keeps "auto".
  const nn::ShortcutKind shortcut = model_->spec().shortcut;
  log::info("model {}{}: {} parameters; run directory {}", config_.arch,
            shortcut == nn::ShortcutKind::arch_default
                ? ""
                : fmt::format(" (option-{} shortcuts)", nn::shortcut_name(shortcut)),
            model_->store().parameter_count(), run_dir_.path());
  log::info("augmentation: {}", data_.backend_augment() ? "on the backend, from the raw pixels"
                                                        : "in the loader thread");
  if (config_.sync_bn) log::info("--sync-bn: {}", sync_bn_note());
}

std::string TrainingRun::sync_bn_note() const {
  if (comm_->size() == 1) return "one rank: plain BatchNorm";
  const bool graphs_off = config_.cuda_graphs && choice_.backend->device() == Device::cuda;
  return fmt::format("BatchNorm statistics over all {} ranks, exchanged through MPI{}",
                     comm_->size(),
                     graphs_off ? "; CUDA graphs off (the exchanges wait on the host)" : "");
}

void TrainingRun::start_driver(const ResumePoint& start) {
  const int64_t resumed_epoch_steps =
      steps_in_epoch(config_, data_.steps_per_epoch(), start.epochs_done + 1);
  if (!start.at_epoch_boundary() && start.step_in_epoch < resumed_epoch_steps)
    data_.resume_epoch(start.epochs_done, start.step_in_epoch * config_.batch_size);
  checkpoints_ = std::make_unique<RunCheckpoints>(
      checkpointer_, run_dir_, metrics_.get(), config_.keep_checkpoints,
      CheckpointPolicy(checkpoint_policy_options(config_), now_seconds()));
  EpochDriverParts parts{config_,    *comm_,        data_,         step_,          optimizer_,
                         callbacks_, guard_,        *checkpoints_, metrics_.get(), *model_,
                         test_set_,  eval_options_, signal_,       requeue_plan_};
  driver_ = std::make_unique<EpochDriver>(std::move(parts), start.global_step);
}

int TrainingRun::run() {
  log_start();
  EpochTotals resumed_totals;
  const ResumePoint start = start_or_resume(resumed_totals);
  start_driver(start);
  const int64_t last_epoch = last_epoch_of_run(config_, data_.steps_per_epoch());
  for (int64_t epoch = start.epochs_done + 1; epoch <= last_epoch; ++epoch) {
    const bool resumed_epoch = epoch == start.epochs_done + 1;
    const int64_t first_step = resumed_epoch ? start.step_in_epoch : 0;
    if (!driver_->run_epoch(epoch, first_step, resumed_epoch ? resumed_totals : EpochTotals{}))
      return static_cast<int>(ExitCode::preempted);
  }
  return finish(start);
}

int TrainingRun::finish(const ResumePoint& start) {
  if (start.epochs_done == last_epoch_of_run(config_, data_.steps_per_epoch())) {
    // The run had finished (a requeued job that already completed): evaluate again so
    // metrics.h5 gets its /final group back.
    log::info("all {} epochs were done; evaluating the final model again", config_.epochs);
    driver_->evaluate_now();
  }
  const EvaluationResult& result = driver_->last_eval();
  require_finite_loss(result, "the final evaluation");
  if (writer_) {
    metrics_->write_final(result, test_set_.class_names(), config_.tta);
    log::info("final: test accuracy {:.2f}% loss {:.4f} on {} images; outputs in {}",
              100 * result.accuracy(), result.loss, result.samples, run_dir_.path());
  }
  return 0;
}

}  // namespace

int train(const TrainConfig& config, const MpiSession& mpi, const PreemptionSignal& signal,
          RecipeAdditions additions) {
  // Watched from here: a rank that stalls in the start-up (a hung file system under the data or
  // the checkpoint) ends the job as one that stalls in a step does.
  CollectiveWatchdog watchdog(config.collective_timeout);
  check_same_config_on_all_ranks(config);
  check_same_input_on_all_ranks("--data", config.data);
  TrainingRun run(config, signal, mpi, watchdog, std::move(additions));
  return run.run();
}

}  // namespace dp
