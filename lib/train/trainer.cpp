// train(): the checks every rank makes before a run, then the run. TrainingRun's construction
// (the pieces run_setup builds, wired together) and its epoch loop; how it starts is in
// training_run_start.cpp.
#include "train/trainer.h"

#include "comm/collective_watchdog.h"
#include "comm/fault_injection.h"
#include "comm/mpi_session.h"
#include "core/log.h"
#include "core/timer.h"
#include "train/lookahead_callback.h"
#include "train/same_config_check.h"
#include "train/same_input_check.h"
#include "train/schedule_callbacks.h"
#include "train/training_run.h"

namespace dp {

TrainingRun::TrainingRun(const TrainConfig& config, const PreemptionSignal& signal,
                         const MpiSession& mpi, CollectiveWatchdog& watchdog,
                         RecipeAdditions additions)
    : config_(config),
      signal_(signal),
      comm_(make_mpi_communicator()),
      writer_(comm_->rank() == 0),
      train_set_(open_split_on_every_rank(config.data, "train")),
      test_set_(open_split_on_every_rank(config.data, "test")),
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
                    run_identity(config, train_set_, data_.steps_per_epoch())),
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
  // Graphs asked for on CUDA are what sync BN turns off (train_step_options).
  const bool graphs_turned_off = config_.cuda_graphs && choice_.backend->device() == Device::cuda;
  return fmt::format("BatchNorm statistics over all {} ranks, exchanged through MPI{}",
                     comm_->size(),
                     graphs_turned_off ? "; CUDA graphs off (the exchanges wait on the host)" : "");
}

void TrainingRun::start_driver(const ResumePoint& start) {
  const int64_t resumed_epoch_steps =
      steps_in_epoch(config_, data_.steps_per_epoch(), start.epochs_done + 1);
  if (!start.at_epoch_boundary() && start.step_in_epoch < resumed_epoch_steps)
    data_.resume_epoch(start.epochs_done, start.step_in_epoch * config_.batch_size);
  checkpoints_ = std::make_unique<RunCheckpoints>(
      checkpointer_, run_dir_, writer_, metrics_.get(), config_.keep_checkpoints,
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
