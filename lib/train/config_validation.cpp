// `dptrain train`'s validation: every range and combination the options must satisfy, each
// refusal one line naming the option (UsageError).

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "comm/collective_watchdog.h"
#include "core/error.h"
#include "nn/model.h"
#include "train/augmentation.h"
#include "train/checkpoint_files.h"
#include "train/config.h"
#include "train/config_parts.h"
#include "train/schedule_options.h"

namespace dp {

namespace {

// Far beyond any real run; keeps the conversion to bucket bytes in range.
constexpr double kMaxBucketMb = 1 << 20;  // 1 TiB

void require(bool ok, const std::string& option, const std::string& why) {
  if (!ok) throw UsageError(fmt::format("option --{}: {}", option, why));
}

// The data, the model, the device and the augmentation.
void validate_data_model(const TrainConfig& c) {
  require(!c.data.empty(), "data", "is required (a file written by `dptrain pack`)");
  const std::string unknown_arch = nn::unknown_arch_problem(c.arch);
  require(unknown_arch.empty(), "arch", unknown_arch);
  require(!c.zero_init_residual || nn::has_residual_blocks(c.arch), "zero-init-residual",
          fmt::format("{} has no residual blocks", c.arch));
  require(c.epochs >= 1, "epochs", "must be at least 1");
  require(c.batch_size >= 1, "batch-size", "must be at least 1");
  // The augmentation draws its offsets as int: padding past any image size is a typo.
  require(c.crop_padding >= 0 && c.crop_padding <= (1 << 16), "crop-padding",
          "must be in [0, 65536]");
  require(c.whiten_init >= 0, "whiten-init", "must not be negative");
  require(c.translate >= 0 && c.translate <= (1 << 16), "translate", "must be in [0, 65536]");
  require(c.prefetch >= 2 && c.prefetch <= 64, "prefetch",
          "must be in [2, 64] (a batch is read while one computes; each more holds one in memory)");
  validate_device_options(c);
  tta_views(c.tta);  // throws for a level it has no views for
}

// The optimizer, its parameter groups, the loss and the LR schedule.
void validate_optimization(const TrainConfig& c) {
  require(c.lr >= 0, "lr", "must not be negative");
  require(c.momentum >= 0 && c.momentum < 1, "momentum", "must be in [0, 1)");
  require(!c.nesterov || c.momentum > 0, "nesterov", "needs --momentum > 0");
  require(c.weight_decay >= 0, "weight-decay", "must not be negative");
  require(c.lookahead.every >= 0, "lookahead-every", "must not be negative");
  require(c.lookahead.base > 0 && c.lookahead.base <= 1, "lookahead-base", "must be in (0, 1]");
  require(c.lookahead.power >= 0, "lookahead-power", "must not be negative");
  require(c.lookahead.start_epoch >= 0, "lookahead-start-epoch", "must not be negative");
  require(c.lookahead.start_epoch < c.epochs, "lookahead-start-epoch",
          "must be below the run's epochs (--epochs rounded up): the average would never start");
  // Lookahead's other options without it would change nothing, without a word.
  const LookaheadSettings off;
  for (const auto& [unused, option] :
       {std::pair{c.lookahead.start_epoch != off.start_epoch, "lookahead-start-epoch"},
        std::pair{c.lookahead.each_epoch != off.each_epoch, "lookahead-each-epoch"},
        std::pair{c.lookahead.base != off.base, "lookahead-base"},
        std::pair{c.lookahead.power != off.power, "lookahead-power"}})
    require(c.lookahead.every > 0 || !unused, option, "needs --lookahead-every > 0");
  require(c.bn_bias_lr_factor > 0, "bn-bias-lr-factor", "must be positive");
  for (const std::string& value : c.freeze) parse_freeze(value);
  require(c.label_smoothing >= 0 && c.label_smoothing <= 1, "label-smoothing", "must be in [0, 1]");
  require(c.dampening >= 0 && c.dampening <= 1, "dampening", "must be in [0, 1]");
  require(!c.nesterov || c.dampening == 0, "nesterov", "needs --dampening 0 (as torch)");
}

// Evaluation, logging, checkpoints, resume and communication.
void validate_run_control(const TrainConfig& c) {
  require(c.eval_every >= 0, "eval-every", "must not be negative");
  require(c.log_every >= 1, "log-every", "must be at least 1");
  require(c.checkpoint_every >= 0, "checkpoint-every", "must not be negative");
  require(c.checkpoint_every_steps >= 0, "checkpoint-every-steps", "must not be negative");
  require(c.checkpoint_every_minutes >= 0, "checkpoint-every-minutes", "must not be negative");
  require(c.keep_checkpoints >= 1, "keep-checkpoints", "must be at least 1");
  require(!c.output_dir.empty(), "output-dir", "must not be empty ('.' is the current folder)");
  // The run directory is <output-dir>/<run-name>: a path would put it elsewhere, and a control
  // character (a newline) would split every log line that names it.
  const bool control = std::any_of(c.run_name.begin(), c.run_name.end(),
                                   [](unsigned char ch) { return std::iscntrl(ch) != 0; });
  require(c.run_name.find('/') == std::string::npos && !control && c.run_name != "." &&
              c.run_name != "..",
          "run-name",
          "must be a plain name (no '/' or control character, not . or ..); --output-dir says "
          "where");
  const bool fresh = c.resume.kind == ResumeRequest::Kind::none;
  require(fresh || !c.overwrite, "resume", "cannot be combined with --overwrite");
  require(c.max_steps_per_epoch >= 0, "max-steps-per-epoch", "must not be negative");
  require(c.stop_after_steps >= 0, "stop-after-steps", "must not be negative");
  require(c.stop_after_steps == 0 || fresh, "stop-after-steps",
          "cannot be combined with --resume (a benchmark of a run's first steps)");
  require(c.bucket_mb > 0 && c.bucket_mb <= kMaxBucketMb, "bucket-mb",
          fmt::format("must be in (0, {}]", kMaxBucketMb));
  require(c.max_consecutive_skips >= 1, "max-consecutive-skips", "must be at least 1");
  const std::string timeout_problem = collective_timeout_problem(c.collective_timeout);
  require(timeout_problem.empty(), "collective-timeout", timeout_problem);
}

// The test-only fault, NaN and pause injection.
void validate_test_hooks(const TrainConfig& c) {
  require(c.fail_at_step >= -1, "fail-at-step", "must be a step, 0 or -1");
  require(c.fail_rank >= 0, "fail-rank", "must not be negative");
  require(c.inject_nan_at_step >= 0, "inject-nan-at-step", "must not be negative");
  require(c.inject_nan_rank >= 0, "inject-nan-rank", "must not be negative");
  require(c.pause_at_step >= 0, "pause-at-step", "must not be negative");
  require(c.inject_nan_steps >= 1, "inject-nan-steps", "must be at least 1");
}

// Every real-valued option is finite: the range checks below pass +inf where they test only a
// lower bound (--lr inf, --weight-decay inf would train to NaN and exit 0).
void validate_finite(const TrainConfig& c) {
  const std::pair<double, const char*> values[] = {
      {c.lr, "lr"},
      {c.momentum, "momentum"},
      {c.dampening, "dampening"},
      {c.weight_decay, "weight-decay"},
      {c.label_smoothing, "label-smoothing"},
      {c.bn_bias_lr_factor, "bn-bias-lr-factor"},
      {c.warmup_fraction, "warmup-fraction"},
      {c.lr_start_factor, "lr-start-factor"},
      {c.lr_end_factor, "lr-end-factor"},
      {c.lr_gamma, "lr-gamma"},
      {c.min_lr, "min-lr"},
      {c.warmup_epochs, "warmup-epochs"},
      {c.onecycle_pct_start, "onecycle-pct-start"},
      {c.onecycle_base_momentum, "onecycle-base-momentum"},
      {c.onecycle_max_momentum, "onecycle-max-momentum"},
      {c.onecycle_div_factor, "onecycle-div-factor"},
      {c.onecycle_final_div_factor, "onecycle-final-div-factor"},
      {c.lookahead.base, "lookahead-base"},
      {c.lookahead.power, "lookahead-power"},
      {c.checkpoint_every_minutes, "checkpoint-every-minutes"},
      {c.bucket_mb, "bucket-mb"},
      {c.collective_timeout, "collective-timeout"}};
  for (const auto& [value, option] : values)
    require(std::isfinite(value), option, "must be finite");
}

}  // namespace

void validate_train_config(const TrainConfig& c) {
  validate_finite(c);
  validate_data_model(c);
  validate_optimization(c);
  check_schedule_options(c);  // the LR schedule's own checks, naming the options
  validate_run_control(c);
  validate_test_hooks(c);
}

}  // namespace dp
