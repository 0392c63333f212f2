#include "train/test_hooks.h"

#include <fstream>
#include <limits>

#include "comm/agreed_verdict.h"
#include "comm/fault_injection.h"
#include "core/error.h"
#include "core/log.h"
#include "data/sharded_loader.h"
#include "train/preemption_signal.h"

namespace dp {

namespace {

class NoTestHooks final : public TestHooks {
 public:
  void before_step(const StepPosition&, const data::HostBatch&) override {}
  void after_forward(int64_t, Tensor&) override {}
  void after_eval_batch() override {}
  bool rewrites_dlogits() const override { return false; }
};

class InjectingTestHooks final : public TestHooks {
 public:
  InjectingTestHooks(const TrainConfig& config, Backend& backend, int rank,
                     const PreemptionSignal& signal)
      : fault_{config.fail_at_step, config.fail_rank, config.fail_mode},
        pause_at_step_(config.pause_at_step),
        pause_in_eval_(config.pause_in_eval && rank == 0),
        nan_first_(config.inject_nan_at_step),
        nan_steps_(config.inject_nan_steps),
        nan_rank_(config.inject_nan_rank),
        backend_(backend),
        rank_(rank),
        signal_(signal) {
    if (config.dump_samples.empty()) return;
    const std::string path = fmt::format("{}.{}", config.dump_samples, rank);
    dump_.open(path, std::ios::app);
    if (!dump_) throw UsageError(fmt::format("option --dump-samples: cannot write {}", path));
  }

  // One line per step, flushed: a run killed later still leaves every step it took.
  void before_step(const StepPosition& at, const data::HostBatch& batch) override {
    if (!dump_.is_open()) return;
    dump_ << at.epoch << ' ' << at.step_in_epoch << ' ' << at.global_step + 1;
    for (int64_t index : batch.indices) dump_ << ' ' << index;
    dump_ << std::endl;
  }

  void after_forward(int64_t step, Tensor& dlogits) override {
    inject_fault_if_due(fault_, rank_, step);
    if (step == pause_at_step_) pause(fmt::format("at step {}", step));
    if (nan_first_ > 0 && rank_ == nan_rank_ && step >= nan_first_ && step < nan_first_ + nan_steps_)
      backend_.fill(dlogits, std::numeric_limits<float>::quiet_NaN());
  }
  // Once per process: the first evaluation batch of its first evaluation.
  void after_eval_batch() override {
    if (!pause_in_eval_) return;
    pause_in_eval_ = false;
    pause("in the evaluation");
  }
  bool rewrites_dlogits() const override { return nan_first_ > 0; }

 private:
  void pause(const std::string& where) const {
    constexpr double kLimitSeconds = 300;
    log::info("test option: waiting {} for SIGUSR1 or SIGTERM", where);
    if (!signal_.wait_for(kLimitSeconds))
      throw UsageError(
          fmt::format("test option: no SIGUSR1/SIGTERM within {} s {}", kLimitSeconds, where));
  }

  FaultInjection fault_;
  int64_t pause_at_step_;
  bool pause_in_eval_;
  int64_t nan_first_, nan_steps_;
  int nan_rank_;
  Backend& backend_;
  int rank_;
  const PreemptionSignal& signal_;
  std::ofstream dump_;
};

// A fault or NaN aimed at a rank the job lacks would leave the test testing nothing. Every
// rank has the same options and world size: one verdict, rank 0's line.
void require_rank_in_job(const char* option, int target, int world) {
  if (target >= world)
    throw_agreed_verdict(
        UsageError(fmt::format("option --{}: rank {} is not in this job of {} rank{}", option,
                               target, world, world == 1 ? "" : "s")));
}

}  // namespace

std::unique_ptr<TestHooks> make_test_hooks(const TrainConfig& config, Backend& backend, int rank,
                                           int world, const PreemptionSignal& signal) {
  if (config.fail_at_step != 0) require_rank_in_job("fail-rank", config.fail_rank, world);
  if (config.inject_nan_at_step > 0)
    require_rank_in_job("inject-nan-rank", config.inject_nan_rank, world);
  if (config.fail_at_step == 0 && config.pause_at_step == 0 && !config.pause_in_eval &&
      config.inject_nan_at_step == 0 && config.dump_samples.empty())
    return std::make_unique<NoTestHooks>();
  return std::make_unique<InjectingTestHooks>(config, backend, rank, signal);
}

}  // namespace dp
