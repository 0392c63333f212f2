#include "train/trainer.h"

#include <algorithm>
#include <cmath>
#include <ctime>
#include <filesystem>
#include <limits>
#include <optional>

#include "comm/comm_choice.h"
#include "comm/fault_injection.h"
#include "comm/gradient_reducer.h"
#include "comm/mpi_session.h"
#include "core/log.h"
#include "core/timer.h"
#include "data/distributed_sampler.h"
#include "data/hdf5_dataset.h"
#include "data/sharded_loader.h"
#include "io/metrics_writer.h"
#include "nn/model.h"
#include "optim/lr_schedule.h"
#include "optim/sgd.h"
#include "train/backend_choice.h"
#include "train/build_info.h"
#include "train/checkpoint_files.h"
#include "train/checkpoint_policy.h"
#include "train/device_batch.h"
#include "train/evaluator.h"
#include "train/forward_backward.h"
#include "train/preemption_signal.h"
#include "train/progress.h"
#include "train/run_directory.h"
#include "train/slurm_requeue.h"
#include "train/step_guard.h"
#include "train/training_checkpoint.h"
#include "train/training_state.h"

namespace dp {

namespace {

// The parameters as slices of the flat gradient buffer, keyed by ParameterStore id, for the
// bucketed gradient reducer.
std::vector<GradientSlice> gradient_slices(const nn::ParameterStore& store) {
  std::vector<GradientSlice> slices;
  for (nn::ParameterStore::Id id = 0; id < store.entries().size(); ++id) {
    const nn::StateEntry& e = store.entry(id);
    if (e.kind == nn::StateKind::parameter) slices.push_back({id, e.offset, e.numel()});
  }
  return slices;
}

// Rank 0's initial weights and BN buffers to every rank, over the communicator that works in
// the model's memory (MPI for host tensors; NCCL or host-staged MPI for device ones).
void broadcast_state(nn::Model& model, Communicator& comm) {
  if (comm.size() == 1) return;
  comm.broadcast(model.params().data(), model.params().numel(), 0);
  comm.broadcast(model.buffers().data(), model.buffers().numel(), 0);
}

// What the ranks agree on after every step, in one small allreduce: the global batch's loss and
// accuracy (for the log and /steps), whether any rank got a stop signal, and whether rank 0's
// clock says a timed checkpoint is due.
struct StepAgreement {
  double loss = 0, accuracy = 0;
  bool stop = false, checkpoint_due = false;
};

StepAgreement agree_on_step(Communicator& comm, double loss, int64_t correct, int64_t samples,
                            bool stop_requested, bool time_due_on_rank0) {
  double values[5] = {loss, double(correct), double(samples), stop_requested ? 1.0 : 0.0,
                      comm.rank() == 0 && time_due_on_rank0 ? 1.0 : 0.0};
  comm.allreduce_sum(values, 5);
  return {values[0] / comm.size(), values[1] / values[2], values[3] > 0, values[4] > 0};
}

// Signals that arrive outside a step (during evaluation, say) are agreed on at the epoch's end.
bool agree_on_stop(Communicator& comm, bool stop_requested) {
  double value = stop_requested ? 1.0 : 0.0;
  comm.allreduce_sum(&value, 1);
  return value > 0;
}

std::string utc_now() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return text;
}

optim::LrScheduleSpec lr_schedule_spec(const TrainConfig& config, int64_t steps_per_epoch) {
  optim::LrScheduleSpec spec;
  spec.name = config.lr_schedule;
  spec.base_lr = config.lr;
  spec.steps_per_epoch = steps_per_epoch;
  spec.epochs = config.epochs;
  spec.milestones = config.lr_milestones;
  spec.gamma = config.lr_gamma;
  spec.min_lr = config.min_lr;
  spec.pct_start = config.onecycle_pct_start;
  spec.warmup_epochs = config.warmup_epochs;
  return spec;
}

// One training run. The constructor builds everything (every rank validates the data before
// step 1, so a bad file stops all of them); run() resumes if asked and trains to the end or to
// a stop signal.
class Trainer {
 public:
  Trainer(const TrainConfig& config, const MpiSession& mpi, const PreemptionSignal& signal);
  int run();

 private:
  // Loads the checkpoint --resume names, if any, and opens metrics.h5 accordingly.
  ResumePoint start_or_resume(EpochTotals& resumed_totals);
  std::string agreed_resume_path();
  void open_metrics(const std::string& resumed_from, const ResumePoint& point);
  // Runs epoch `epoch` from step `first_step`; false when the ranks agreed to stop mid-epoch
  // (the checkpoint is then written).
  bool run_epoch(int64_t epoch, int64_t first_step, EpochTotals totals);
  EpochRecord finish_epoch(int64_t epoch, const EpochTotals& totals, double epoch_start);
  void checkpoint(const ResumePoint& point, const EpochTotals& totals, const std::string& trigger);
  int stop_preempted(const ResumePoint& point);
  void pause_for_signal() const;

  const TrainConfig& config_;
  const MpiSession& mpi_;
  std::unique_ptr<Communicator> comm_;
  int world_;
  bool writer_;
  data::HDF5Dataset train_set_, test_set_;
  BackendChoice choice_;
  nn::ModelSpec spec_;
  std::unique_ptr<nn::Model> model_;
  CommChoice grad_comm_;
  std::unique_ptr<GradientReducer> reducer_;
  // Forward, loss and backward of a step: eager, or a replayed CUDA graph (--cuda-graphs).
  std::unique_ptr<ForwardBackward> step_;
  FaultInjection fault_;
  int64_t local_batch_;
  std::unique_ptr<data::DistributedSampler> sampler_;
  std::unique_ptr<data::ShardedLoader> loader_;
  // The loader skips the batches a mid-epoch checkpoint had already consumed: in epoch index
  // skip_epoch_ (0-based), the first skip_samples_ of this rank's samples.
  int64_t skip_epoch_ = -1, skip_samples_ = 0;
  int64_t steps_per_epoch_ = 0;
  std::unique_ptr<optim::LrSchedule> schedule_;
  std::unique_ptr<optim::Sgd> sgd_;
  std::unique_ptr<TrainingCheckpointer> checkpointer_;
  std::string run_name_;
  std::unique_ptr<RunDirectory> run_dir_;
  std::unique_ptr<MetricsWriter> metrics_;
  CheckpointPolicy policy_;
  const PreemptionSignal& signal_;
  EvalOptions eval_options_;
  // The loader's augmentation when the backend runs it (--augment-on), else empty.
  std::optional<AugmentSpec> backend_augment_;
  EvaluationResult last_eval_;
  int64_t global_step_ = 0;
  std::unique_ptr<Progress> progress_;
  // NaN/Inf steps skipped on all ranks together, the --collective-timeout watchdog, and the
  // test-only NaN injection (train/step_guard.h).
  std::unique_ptr<StepGuard> guard_;
};

Trainer::Trainer(const TrainConfig& config, const MpiSession& mpi,
                 const PreemptionSignal& signal)
    : config_(config),
      mpi_(mpi),
      comm_(make_mpi_communicator()),
      world_(comm_->size()),
      writer_(comm_->rank() == 0),
      train_set_(config.data, "train"),
      test_set_(config.data, "test"),
      choice_(choose_backend(config.device, config.threads, mpi.local_rank(), mpi.local_size(),
                             cuda_options(config.precision, config.deterministic),
                             config.pin_threads, cpu_blocked_activations(config.arch))),
      fault_{config.fail_at_step, config.fail_rank, config.fail_mode},
      local_batch_(config.batch_size / world_),
      policy_({config.checkpoint_every, config.checkpoint_every_steps,
               double(config.checkpoint_every_minutes)},
              now_seconds()),
      signal_(signal) {
  if (config.batch_size % world_ != 0)
    throw UsageError(fmt::format("option --batch-size: {} is not divisible by the {} ranks",
                                 config.batch_size, world_));
  Backend& backend = *choice_.backend;
  spec_.arch = config.arch;
  spec_.num_classes = train_set_.num_classes();
  spec_.in_channels = train_set_.channels();
  spec_.zero_init_residual = config.zero_init_residual;
  spec_.seed = config.seed;
  model_ = nn::make_model(spec_, backend);
  // Gradients are averaged in buckets whose allreduce starts from the model's grad-ready
  // hook, overlapping the rest of backward.
  grad_comm_ = choose_gradient_communicator(config.comm, model_->grads().device(),
                                            backend.compute_stream());
  broadcast_state(*model_, *grad_comm_.comm);
  reducer_ = std::make_unique<GradientReducer>(
      model_->grads().data(), gradient_slices(model_->store()), *grad_comm_.comm,
      static_cast<int64_t>(config.bucket_mb * 1024 * 1024));
  model_->store().set_grad_ready_hook(
      [this](nn::ParameterStore::Id id) { reducer_->mark_ready(id); });

  sampler_ = std::make_unique<data::DistributedSampler>(train_set_.size(), world_, comm_->rank(),
                                                        config.seed);
  data::LoaderOptions loader_options;
  loader_options.batch_size = local_batch_;
  loader_options.prefetch_depth = config.prefetch;
  // Every rank must take the same number of steps; the sampler pads shards to equal length,
  // and a last partial batch is kept (as PyTorch's DataLoader does by default).
  loader_options.augment.random_crop = config.crop_padding > 0;
  loader_options.augment.crop_padding = config.crop_padding;
  loader_options.augment.horizontal_flip = config.flip;
  loader_options.augment.normalize = config.normalize;
  loader_options.augment.mean = train_set_.mean();
  loader_options.augment.std = train_set_.std();
  loader_options.augment.seed = config.seed;
  // The sampler's order and the augmentation of each sample depend on (seed, epoch, sample
  // index) alone, so dropping the consumed prefix of a resumed epoch reproduces its remaining
  // batches exactly.
  auto indices = [this](int64_t epoch) {
    std::vector<int64_t> mine = sampler_->indices_for_epoch(epoch);
    if (epoch == skip_epoch_)
      mine.erase(mine.begin(), mine.begin() + std::min<int64_t>(skip_samples_, mine.size()));
    return mine;
  };
  if (augments_on_backend(config.augment_on, backend)) {
    loader_options.defer_augmentation = true;
    backend_augment_ = augment_spec_for(loader_options.augment);
  }
  loader_ = std::make_unique<data::ShardedLoader>(train_set_, indices, loader_options);

  steps_per_epoch_ = (sampler_->num_samples() + local_batch_ - 1) / local_batch_;
  if (config.max_steps_per_epoch > 0)
    steps_per_epoch_ = std::min(steps_per_epoch_, config.max_steps_per_epoch);
  schedule_ = optim::make_lr_schedule(lr_schedule_spec(config, steps_per_epoch_));

  SgdHyper hyper;
  hyper.lr = config.lr;
  hyper.momentum = config.momentum;
  hyper.nesterov = config.nesterov;
  hyper.weight_decay = config.weight_decay;
  sgd_ = std::make_unique<optim::Sgd>(backend, model_->params(), model_->grads(),
                                      model_->store().make_decay_mask(config.no_decay_bn_bias),
                                      hyper);
  RunIdentity identity;
  identity.arch = config.arch;
  identity.dataset = train_set_.name();
  identity.num_classes = spec_.num_classes;
  identity.in_channels = spec_.in_channels;
  identity.seed = config.seed;
  identity.batch_size = config.batch_size;
  identity.steps_per_epoch = steps_per_epoch_;
  identity.world_size = world_;
  identity.epochs = config.epochs;
  checkpointer_ = std::make_unique<TrainingCheckpointer>(*model_, sgd_->momentum_buffer(), *comm_,
                                                         identity);

  run_name_ = config.run_name.empty() ? default_run_name(config.arch, train_set_.name())
                                      : config.run_name;
  const auto existing = config.resume != "none" ? RunDirectory::Existing::resume
                        : config.overwrite      ? RunDirectory::Existing::overwrite
                                                : RunDirectory::Existing::refuse;
  run_dir_ = std::make_unique<RunDirectory>(config.output_dir, run_name_, existing, writer_);

  eval_options_.batch_size = std::max<int64_t>(local_batch_, 256);
  eval_options_.normalize = config.normalize;
  eval_options_.prefetch = config.prefetch;
  eval_options_.augment_on_backend = backend_augment_.has_value();
  guard_ = std::make_unique<StepGuard>(step_guard_options(config), backend, *comm_);
  // NaN injection rewrites dlogits between forward and backward, which a graph replay skips.
  const bool graphs = config.cuda_graphs && config.inject_nan_at_step == 0;
  step_ = std::make_unique<ForwardBackward>(*model_, backend, config.label_smoothing, graphs,
                                            local_batch_);
}

std::string Trainer::agreed_resume_path() {
  // The run directory must be on a file system every rank sees; each rank resolves --resume
  // itself, and the ranks check that they found the same checkpoint.
  comm_->barrier();  // rank 0 has created the run directory
  const std::string path = resolve_resume_option(config_.resume, run_dir_->path());
  const double mine = path.empty() ? -1.0 : double(read_checkpoint_meta(path).ints["step"]);
  std::vector<double> all(world_);
  comm_->allgather(&mine, 1, all.data());
  if (std::any_of(all.begin(), all.end(), [&](double v) { return v != all[0]; }))
    throw Error(ExitCode::communication,
                fmt::format("option --resume: the ranks found different checkpoints in {} (is it "
                            "on a file system that every node sees?)", run_dir_->path()));
  return path;
}

void Trainer::open_metrics(const std::string& resumed_from, const ResumePoint& point) {
  if (!writer_) return;
  if (!resumed_from.empty() && std::filesystem::exists(run_dir_->metrics())) {
    std::map<std::string, std::string> info = {
        {"checkpoint", resumed_from},
        {"epochs_done", std::to_string(point.epochs_done)},
        {"step", std::to_string(point.checkpoint_step)},
        {"step_in_epoch", std::to_string(point.step_in_epoch)},
        {"world_size", std::to_string(world_)},
        {"time", utc_now()}};
    if (const std::string job = slurm_job_id(); !job.empty()) info["slurm_job_id"] = job;
    if (const char* restarts = std::getenv("SLURM_RESTART_COUNT")) info["slurm_restart_count"] = restarts;
    metrics_ = MetricsWriter::reopen(run_dir_->metrics(), point.epochs_done, point.checkpoint_step, info);
    return;
  }
  if (!resumed_from.empty())
    log::info("note: {} has no metrics.h5; a new one starts at epoch {}", run_dir_->path(),
              point.epochs_done + 1);
  auto effective = config_.effective;
  effective["run-name"] = run_name_;
  effective["world-size"] = std::to_string(world_);
  effective["backend"] = choice_.reason;
  effective["gradient-comm"] = grad_comm_.reason;
  metrics_ = std::make_unique<MetricsWriter>(run_dir_->metrics(), effective, build_info());
}

ResumePoint Trainer::start_or_resume(EpochTotals& resumed_totals) {
  ResumePoint point;
  std::string path = config_.resume == "none" ? std::string() : agreed_resume_path();
  if (path.empty()) {
    if (config_.resume == "auto")
      log::info("--resume auto: no checkpoint in {} yet, starting from scratch", run_dir_->path());
  } else {
    point = checkpointer_->load(path, resumed_totals);
    log::info("resumed from {}: {} epochs and {} steps of epoch {} done ({} updates)", path,
              point.epochs_done, point.step_in_epoch, point.epochs_done + 1, point.global_step);
  }
  open_metrics(path, point);
  return point;
}

int Trainer::run() {
  log::info("dptrain {}: {} on {} ({} train / {} test, {} classes), {} ranks x batch {}, {}",
            DPTRAIN_VERSION, config_.arch, config_.data, train_set_.size(), test_set_.size(),
            train_set_.num_classes(), world_, local_batch_, choice_.reason);
  log::info("model {}: {} parameters; run directory {}", config_.arch,
            model_->store().parameter_count(), run_dir_->path());
  log::info("augmentation: {}", backend_augment_ ? "on the backend, from the raw pixels"
                                                 : "in the loader thread");

  EpochTotals resumed_totals;
  const ResumePoint start = start_or_resume(resumed_totals);
  global_step_ = start.global_step;
  progress_ = std::make_unique<Progress>(config_.epochs, steps_per_epoch_, config_.batch_size);
  progress_->resume_at(global_step_);
  if (!start.at_epoch_boundary()) {
    skip_epoch_ = start.epochs_done;
    skip_samples_ = start.step_in_epoch * local_batch_;
  }

  for (int64_t epoch = start.epochs_done + 1; epoch <= config_.epochs; ++epoch) {
    const bool resumed_epoch = epoch == start.epochs_done + 1;
    const int64_t first_step = resumed_epoch ? start.step_in_epoch : 0;
    if (!run_epoch(epoch, first_step, resumed_epoch ? resumed_totals : EpochTotals{}))
      return static_cast<int>(ExitCode::preempted);
  }
  if (start.epochs_done == config_.epochs) {
    // The run had finished (a requeued job that already completed): evaluate again so
    // metrics.h5 gets its /final group back.
    log::info("all {} epochs were done; evaluating the final model again", config_.epochs);
    last_eval_ = evaluate(*model_, test_set_, eval_options_, *comm_);
  }
  if (writer_) {
    metrics_->write_final(last_eval_, test_set_.class_names());
    log::info("final: test accuracy {:.2f}% loss {:.4f} on {} images; outputs in {}",
              100 * last_eval_.accuracy(), last_eval_.loss, last_eval_.samples, run_dir_->path());
  }
  return 0;
}

bool Trainer::run_epoch(int64_t epoch, int64_t first_step, EpochTotals totals) {
  Backend& backend = *choice_.backend;
  const double epoch_start = now_seconds() - totals.elapsed;
  DeviceBatch device_batch(backend, backend_augment_);
  bool checkpoint_at_end = false, stop_at_end = false;
  model_->set_train(true);
  loader_->start_epoch(epoch - 1);
  for (int64_t step = first_step; step < steps_per_epoch_; ++step) {
    const data::HostBatch* batch = loader_->next();
    DP_CHECK(batch != nullptr, "loader ended after {} of {} steps", step, steps_per_epoch_);
    totals.times.data += loader_->last_wait_seconds();
    const double lr = schedule_->lr(global_step_);
    float loss;
    int64_t correct = 0;
    bool graphed = false;
    {
      // A graph step replays backward too: its whole time counts as forward time.
      ScopedTimer t(totals.times.forward);
      device_batch.upload(*batch);
      graphed = step_->forward(device_batch.images(), device_batch.labels());
      loss = step_->read_loss(correct);
    }
    inject_fault_if_due(fault_, comm_->rank(), global_step_ + 1);
    if (config_.pause_at_step == global_step_ + 1) pause_for_signal();
    // Graphs are off while NaN injection could rewrite dlogits here (see the constructor).
    guard_->before_backward(global_step_ + 1, step_->dlogits());
    // A replayed graph ran backward too, without grad-ready hooks: finish() below starts
    // every bucket nobody reported.
    if (!graphed) {
      ScopedTimer t(totals.times.backward);
      step_->backward();
    }
    {
      const ReductionTimes reduced = reducer_->finish();
      totals.times.comm += reduced.comm;
      totals.comm_hidden += reduced.hidden;
    }
    const bool skipped = guard_->skip_update(loss, model_->grads(), epoch, step + 1);
    if (!skipped) {
      ScopedTimer t(totals.times.optimizer);
      sgd_->step(static_cast<float>(lr));
    }
    ++global_step_;
    if (!skipped) {  // a skipped step's loss may be NaN: it stays out of the epoch's means
      totals.loss_sum += double(loss) * batch->size();
      totals.correct += correct;
      totals.samples += batch->size();
    }
    totals.steps += 1;

    const StepAgreement agreed = agree_on_step(*comm_, loss, correct, batch->size(),
                                               signal_.received() != 0,
                                               policy_.time_due(now_seconds()));
    if (writer_) metrics_->add_step({global_step_, epoch, agreed.loss, agreed.accuracy, lr});
    if ((step + 1) % config_.log_every == 0 || step + 1 == steps_per_epoch_)
      log::info("{}", progress_->line(epoch, step + 1, agreed.loss, agreed.accuracy, lr));

    const bool timed_or_counted = agreed.checkpoint_due || policy_.steps_due(global_step_);
    if (step + 1 == steps_per_epoch_) {
      // The epoch's end writes the checkpoint, after its metrics row.
      checkpoint_at_end = timed_or_counted;
      stop_at_end = agreed.stop;
    } else if (agreed.stop || timed_or_counted) {
      totals.elapsed = now_seconds() - epoch_start;
      const ResumePoint point{epoch - 1, step + 1, global_step_, global_step_};
      const std::string trigger =
          agreed.stop ? "signal" : agreed.checkpoint_due ? "minutes" : "steps";
      checkpoint(point, totals, trigger);
      if (agreed.stop) {
        stop_preempted(point);
        return false;
      }
    }
  }

  finish_epoch(epoch, totals, epoch_start);
  const bool last = epoch == config_.epochs;
  stop_at_end = agree_on_stop(*comm_, stop_at_end || signal_.received() != 0);
  const ResumePoint point{epoch, 0, global_step_, global_step_};
  if (policy_.epoch_due(epoch, last) || checkpoint_at_end || stop_at_end)
    checkpoint(point, EpochTotals{}, stop_at_end ? "signal" : "epoch");
  if (stop_at_end && !last) {
    stop_preempted(point);
    return false;
  }
  return true;
}

EpochRecord Trainer::finish_epoch(int64_t epoch, const EpochTotals& totals, double epoch_start) {
  // Global training statistics: sums over ranks.
  double sums[2] = {totals.loss_sum, 0};
  int64_t counts[2] = {totals.correct, totals.samples};
  comm_->allreduce_sum(sums, 2);
  comm_->allreduce_sum(counts, 2);
  // Each rank's own work per step (the wait for the others excluded), gathered so a
  // straggler shows on rank 0.
  const double own_step_time =
      (totals.times.data + totals.times.forward + totals.times.backward +
       totals.times.optimizer) / std::max<int64_t>(totals.steps, 1);
  std::vector<double> step_times(world_);
  comm_->allgather(&own_step_time, 1, step_times.data());
  const double train_time = now_seconds() - epoch_start;

  EpochRecord record;
  record.epoch = epoch;
  record.steps = totals.steps;
  record.lr = schedule_->lr(global_step_ - 1);
  record.train_loss = sums[0] / counts[1];
  record.train_acc = double(counts[0]) / counts[1];
  record.val_loss = record.val_acc = std::numeric_limits<double>::quiet_NaN();
  record.images_per_sec = counts[1] / train_time;
  record.time_data = totals.times.data;
  record.time_forward = totals.times.forward;
  record.time_backward = totals.times.backward;
  record.time_comm = totals.times.comm;
  record.time_comm_hidden = totals.comm_hidden;
  record.step_time_max = *std::max_element(step_times.begin(), step_times.end());
  record.step_time_min = *std::min_element(step_times.begin(), step_times.end());
  record.time_optimizer = totals.times.optimizer;
  record.skipped_steps = guard_->take_epoch_skips();

  const bool last = epoch == config_.epochs;
  if (last || (config_.eval_every > 0 && epoch % config_.eval_every == 0)) {
    const double eval_start = now_seconds();
    last_eval_ = evaluate(*model_, test_set_, eval_options_, *comm_);
    record.time_eval = now_seconds() - eval_start;
    record.val_loss = last_eval_.loss;
    record.val_acc = last_eval_.accuracy();
  }
  record.epoch_time = now_seconds() - epoch_start;
  log::info("{}", progress_->epoch_summary(record));
  if (writer_) metrics_->append_epoch(record);
  return record;
}

void Trainer::checkpoint(const ResumePoint& point, const EpochTotals& totals,
                         const std::string& trigger) {
  // /steps and /history reach the checkpoint's step before the checkpoint exists, so a crash
  // in between leaves rows that the resume drops, never a gap.
  if (writer_) metrics_->flush_steps();
  const std::string latest = run_dir_->checkpoint();
  const std::string dir = run_dir_->path();
  const std::string target = config_.keep_checkpoints > 1
                                 ? dir + "/" + named_checkpoint_file(point.epochs_done, point.global_step)
                                 : latest;
  checkpointer_->save(target, point, totals, trigger);
  if (writer_ && config_.keep_checkpoints > 1) {
    publish_checkpoint_as(target, latest);
    prune_named_checkpoints(dir, config_.keep_checkpoints);
  }
  policy_.saved(now_seconds());
  if (trigger != "epoch")
    log::info("checkpoint ({}) at epoch {} step {}: {}", trigger, point.epochs_done + 1,
              point.step_in_epoch, target);
}

void Trainer::pause_for_signal() const {
  constexpr double kLimitSeconds = 300;
  log::info("--pause-at-step: waiting at step {} for SIGUSR1 or SIGTERM", global_step_ + 1);
  if (!signal_.wait_for(kLimitSeconds))
    throw UsageError(fmt::format("option --pause-at-step: no SIGUSR1/SIGTERM within {} s",
                                 kLimitSeconds));
}

int Trainer::stop_preempted(const ResumePoint& point) {
  log::info("stopping on {} after the checkpoint at {} updates; exit code {} (resume with --resume auto)",
            PreemptionSignal::name(signal_.received()), point.global_step,
            static_cast<int>(ExitCode::preempted));
  const std::string job = slurm_job_id();
  if (writer_ && config_.requeue && !job.empty()) {
    const std::string failed = requeue_slurm_job(job);
    if (failed.empty())
      log::info("requeued Slurm job {}", job);
    else
      log::error("could not requeue Slurm job {}: {}", job, failed);
  }
  // Every rank leaves together, after rank 0 has requeued: with mpirun, a rank that exits
  // early with a non-zero code makes it kill the others.
  comm_->barrier();
  return static_cast<int>(ExitCode::preempted);
}

}  // namespace

int train(const TrainConfig& config, const MpiSession& mpi, const PreemptionSignal& signal) {
  Trainer trainer(config, mpi, signal);
  return trainer.run();
}

}  // namespace dp
