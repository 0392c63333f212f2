#include "train/epoch_driver.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <optional>
#include <vector>

#include "core/error.h"
#include "core/log.h"
#include "core/timer.h"
#include "train/preempted_exit.h"

namespace dp {

EpochDriver::EpochDriver(EpochDriverParts parts, int64_t global_step)
    : parts_(std::move(parts)),
      progress_(parts_.config.epochs, parts_.data.steps_per_epoch(),
                steps_to_run(parts_.config, parts_.data.steps_per_epoch()),
                parts_.config.batch_size),
      global_step_(global_step) {
  progress_.resume_at(global_step_);
}

bool EpochDriver::run_epoch(int64_t epoch, int64_t first_step, EpochTotals totals) {
  EpochSpan span{epoch, steps_in_epoch(parts_.config, parts_.data.steps_per_epoch(), epoch),
                 now_seconds() - totals.elapsed};
  parts_.model.set_train(true);
  // A run stopped after an epoch's last step resumes with its steps done and its end to run;
  // the optimizer is given the state that step ran with (its rate goes in the epoch's row).
  const bool resumed_into_end = first_step >= span.steps;
  if (resumed_into_end)
    parts_.callbacks.before_step({epoch, span.steps - 1, global_step_ - 1}, parts_.optimizer);
  else
    parts_.data.loader().start_epoch(epoch - 1);
  const StepsEnd steps_end = run_steps(span, first_step, totals);
  if (steps_end.left_run) return false;
  return finish_epoch(span, resumed_into_end, steps_end.checkpoint_due, totals);
}

EpochDriver::StepsEnd EpochDriver::run_steps(EpochSpan& span, int64_t first_step,
                                             EpochTotals& totals) {
  StepsEnd end;
  for (int64_t step = first_step; step < span.steps; ++step) {
    const StepAgreement agreed = train_step(span.epoch, step, span.steps, totals);
    const bool timed_or_counted =
        agreed.checkpoint_due || parts_.checkpoints.policy().steps_due(global_step_);
    // The epoch's end writes a due checkpoint after its metrics row. A stop is not kept
    // waiting for the evaluation (it may not end before the job is killed; the run's last,
    // with --tta or a large test set, may outlast Slurm's warning): it checkpoints now, and
    // the resumed run evaluates; so does a stop during the evaluation (finish_epoch). A run
    // no job will continue finishes instead (finishes_despite_stop).
    if (step + 1 == span.steps && (!agreed.stop || finishes_despite_stop(span.epoch))) {
      end.checkpoint_due = timed_or_counted;
    } else if (agreed.stop || timed_or_counted) {
      const CheckpointTrigger trigger = agreed.stop             ? CheckpointTrigger::signal
                                        : agreed.checkpoint_due ? CheckpointTrigger::minutes
                                                                : CheckpointTrigger::steps;
      if (!checkpoint_between_steps(span, step, trigger, agreed.stop, totals, 0)) {
        end.left_run = true;
        return end;
      }
    }
  }
  return end;
}

bool EpochDriver::finish_epoch(EpochSpan& span, bool resumed_into_end, bool checkpoint_due,
                               EpochTotals& totals) {
  const int64_t epoch = span.epoch;
  const double pause_start = now_seconds();  // the epoch's last line was just written
  EpochRecord record = epoch_record(epoch, totals, span.start);
  // Abandoned for a stop: checkpoint with the epoch's end pending. The abandoned evaluation's
  // time is not the epoch's: the resumed run evaluates again.
  if (!evaluate_into(record, resumed_into_end))
    return checkpoint_between_steps(span, span.steps - 1, CheckpointTrigger::signal, /*stop=*/true,
                                    totals, now_seconds() - pause_start);
  record.epoch_time = now_seconds() - span.start;
  log::info("{}", progress_.epoch_summary(record, evaluated_ == epoch));
  if (parts_.metrics) parts_.metrics->append_epoch(record);
  // After the epoch's row is written (the barrier: rank 0 has written it before any rank
  // ends the job), before a checkpoint of the broken model would be.
  if (evaluated_ == epoch && !std::isfinite(last_eval_.loss)) {
    parts_.comm.barrier();
    require_finite_loss(last_eval_, fmt::format("evaluation after epoch {}", epoch));
  }
  const bool go_on = end_epoch(epoch, checkpoint_due);
  progress_.paused(now_seconds() - pause_start);  // evaluation and checkpoint: not training
  return go_on;
}

StepAgreement EpochDriver::train_step(int64_t epoch, int64_t step, int64_t steps,
                                      EpochTotals& totals) {
  data::ShardedLoader& loader = parts_.data.loader();
  const data::HostBatch* batch = loader.next();
  DP_CHECK(batch != nullptr, "loader ended after {} of {} steps", step, steps);
  totals.times.data += loader.last_wait_seconds();
  const StepPosition at{epoch, step, global_step_};
  parts_.callbacks.before_step(at, parts_.optimizer);
  const double lr = parts_.optimizer.lr();
  const StepResult result = parts_.step.run(*batch, at, {totals.times, totals.comm_hidden});
  parts_.callbacks.after_step(at, parts_.optimizer, result.updated);
  ++global_step_;
  if (result.updated) {  // a skipped step's loss may be NaN: it stays out of the epoch's means
    totals.loss_sum += double(result.loss) * result.samples;
    totals.correct += result.correct;
    totals.samples += result.samples;
  } else {
    totals.skipped += 1;
  }
  totals.steps += 1;

  const StepAgreement agreed = agree_on_step(
      parts_.comm, result.loss, result.correct, result.samples, parts_.signal.received() != 0,
      parts_.checkpoints.policy().time_due(now_seconds()));
  if (parts_.metrics) parts_.metrics->add_step({global_step_, epoch, agreed.loss, agreed.accuracy, lr});
  if ((step + 1) % parts_.config.log_every == 0 || step + 1 == steps)
    log::info("{}", progress_.line(epoch, step + 1, agreed.loss, agreed.accuracy, lr));
  return agreed;
}

bool EpochDriver::checkpoint_between_steps(EpochSpan& span, int64_t step, CheckpointTrigger trigger,
                                           bool stop, EpochTotals& totals, double not_training) {
  totals.elapsed = now_seconds() - span.start - not_training;
  const ResumePoint point{span.epoch - 1, step + 1, global_step_, global_step_,
                          parts_.guard.consecutive_skips()};
  const double pause_start = now_seconds();
  parts_.checkpoints.save(point, totals, trigger);
  const double paused = now_seconds() - pause_start;
  progress_.paused(paused);
  span.start += paused;
  if (!stop) return true;
  leave_preempted(point, parts_.signal, parts_.requeue, parts_.comm);
  return false;
}

bool EpochDriver::end_epoch(int64_t epoch, bool checkpoint_due) {
  const bool stop = agree_on_stop(parts_.comm, parts_.signal.received() != 0);
  const ResumePoint point{epoch, 0, global_step_, global_step_, parts_.guard.consecutive_skips()};
  if (parts_.checkpoints.policy().epoch_due(epoch, last_epoch(epoch)) || checkpoint_due || stop)
    parts_.checkpoints.save(point, EpochTotals{},
                            stop ? CheckpointTrigger::signal : CheckpointTrigger::epoch);
  // A signal after the run's last evaluation lets the run finish: its checkpoint is written.
  if (!stop || last_epoch(epoch)) return true;
  leave_preempted(point, parts_.signal, parts_.requeue, parts_.comm);
  return false;
}

EpochRecord EpochDriver::epoch_record(int64_t epoch, const EpochTotals& totals,
                                      double epoch_start) {
  // Global training statistics: sums over ranks.
  double sums[2] = {totals.loss_sum, 0};
  int64_t counts[2] = {totals.correct, totals.samples};
  parts_.comm.allreduce_sum(sums, 2);
  parts_.comm.allreduce_sum(counts, 2);
  // Each rank's own work per step (the wait for the others excluded), gathered so a
  // straggler shows on rank 0.
  const double own_step_time = (totals.times.data + totals.times.forward +
                                totals.times.backward + totals.times.optimizer) /
                               std::max<int64_t>(totals.steps, 1);
  std::vector<double> step_times(parts_.comm.size());
  parts_.comm.allgather(&own_step_time, 1, step_times.data());
  const double train_time = now_seconds() - epoch_start;

  EpochRecord record;
  record.epoch = epoch;
  record.steps = totals.steps;
  record.lr = parts_.optimizer.lr();
  record.train_loss = sums[0] / counts[1];
  record.train_acc = double(counts[0]) / counts[1];
  record.images_per_sec = counts[1] / train_time;
  record.time_data = totals.times.data;
  record.time_forward = totals.times.forward;
  record.time_backward = totals.times.backward;
  record.time_comm = totals.times.comm;
  record.time_comm_hidden = totals.comm_hidden;
  record.step_time_max = *std::max_element(step_times.begin(), step_times.end());
  record.step_time_min = *std::min_element(step_times.begin(), step_times.end());
  record.time_optimizer = totals.times.optimizer;
  record.skipped_steps = totals.skipped;
  return record;
}

bool EpochDriver::evaluate_into(EpochRecord& record, bool resumed_into) {
  record.val_loss = record.val_acc = std::numeric_limits<double>::quiet_NaN();
  const int eval_every = parts_.config.eval_every;
  const bool last = last_epoch(record.epoch);
  if (!last && !(eval_every > 0 && record.epoch % eval_every == 0)) return true;
  const double eval_start = now_seconds();
  // One this job resumed into is not abandoned: where a job's start and this evaluation do
  // not fit before the next warning, each requeued job would abandon it again, for ever. The
  // job stops after it instead (end_epoch), the run's last finishes.
  std::function<bool()> abandon;
  if (!finishes_despite_stop(record.epoch) && !resumed_into)
    abandon = [this] { return parts_.signal.received() != 0; };
  std::optional<EvaluationResult> result =
      evaluate_unless(parts_.model, parts_.test_set, parts_.eval_options, parts_.comm, abandon);
  if (!result) return false;
  last_eval_ = std::move(*result);
  evaluated_ = record.epoch;
  record.time_eval = now_seconds() - eval_start;
  // A loss that is not finite leaves both NaN (predictions from such logits mean nothing);
  // finish_epoch then stops the run.
  if (std::isfinite(last_eval_.loss)) {
    record.val_loss = last_eval_.loss;
    record.val_acc = last_eval_.accuracy();
  }
  return true;
}

bool EpochDriver::finishes_despite_stop(int64_t epoch) const {
  if (!last_epoch(epoch)) return false;
  return parts_.config.stop_after_steps > 0 || parts_.requeue.job_ends_for_good();
}

void EpochDriver::evaluate_now() {
  last_eval_ = evaluate(parts_.model, parts_.test_set, parts_.eval_options, parts_.comm);
}

}  // namespace dp
