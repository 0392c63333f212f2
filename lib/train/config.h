// The training configuration: every option of `dptrain train`, read from the command line
// and from config files (Boost.Program_options; command line wins over the file), validated
// up front so a bad value stops the job before any work with a message naming the option.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "comm/comm_choice.h"
#include "comm/fault_injection.h"
#include "core/option_enum.h"
#include "nn/shortcut_kind.h"
#include "optim/lr_schedule.h"
#include "train/checkpoint_files.h"
#include "train/device_options.h"
#include "train/lookahead_settings.h"

namespace dp {

// --augment-on: where crop, flip and normalisation run: host (the loader thread), device (the
// backend, from raw pixels), automatic (device on the CUDA backend, host on the CPU one).
enum class AugmentOn { automatic, host, device };
constexpr std::array<NamedValue<AugmentOn>, 3> enum_names(AugmentOn) {
  using A = AugmentOn;
  return {{{A::automatic, "auto"}, {A::host, "host"}, {A::device, "device"}}};
}

// --loss-reduction: the loss (and its gradient) over the global batch, as torch's reduction.
enum class LossReduction { mean, sum };
constexpr std::array<NamedValue<LossReduction>, 2> enum_names(LossReduction) {
  return {{{LossReduction::mean, "mean"}, {LossReduction::sum, "sum"}}};
}

// The device options come from DeviceOptions, whose table and validation eval and bench share.
struct TrainConfig : DeviceOptions {
  // data
  std::string data;  // packed HDF5 dataset (dptrain pack)
  int crop_padding = 4;  // 0 disables random crop
  // > 0: random crop with this reflect padding (shifts -N..N), replacing --crop-padding
  int translate = 0;
  bool flip = true;
  bool alternating_flip = false;  // --flip alternating (data::AugmentConfig::alternating_flip)
  bool normalize = true;
  int prefetch = 2;
  AugmentOn augment_on = AugmentOn::automatic;
  // model
  std::string arch = "resnet20";
  // Where a block's shape changes: A (He et al.'s parameter-free subsample + zero channels), B
  // (1x1 projection) or auto (A for resnet8/20/32/44/56, B for torchvision's archs).
  nn::ShortcutKind shortcut = nn::ShortcutKind::arch_default;
  bool zero_init_residual = false;
  // > 0: the first convolution starts as the whitening of the first N training images
  // (nn/whitening.h); it must be {2 C k^2, C, k, k}.
  int64_t whiten_init = 0;
  float label_smoothing = 0.0f;
  LossReduction loss_reduction = LossReduction::mean;
  // optimisation
  int epochs = 10;  // whole epochs run: --epochs rounded up
  // --epochs E when E is not whole (else 0): the run stops after T = ceil(E x steps per epoch)
  // steps (airbench94's rule: 9.9 epochs of 48 steps = 476 steps), inside epoch ceil(E).
  double epochs_fraction = 0;
  bool drop_last = false;  // drop each epoch's last partial batch
  int batch_size = 128;  // global batch (split over ranks)
  // lr, weight_decay, lr_gamma, min_lr and dampening are doubles, as torch's Python floats: the
  // schedule, the groups' decay and the buffer's 1 - dampening compute in double and round to
  // float once, for the update, as torch.optim.SGD does (stored as floats, 0.1f x 0.1f after a
  // milestone is 0.010000001f where torch's update uses 0.01f, a cosine's lr is a float off on
  // 1 step in 6, and 1 - 0.9f is 0.10000002f where torch uses 0.1f). momentum is used as it is
  // (torch rounds the Python float to float for the update): float.
  double lr = 0.1;
  float momentum = 0.9f;
  double dampening = 0.0;  // torch.optim.SGD's (not on the buffer's first update)
  bool nesterov = false;
  double weight_decay = 5e-4;
  bool no_decay_bn_bias = false;
  // > 1 (or any value but 1): the BN biases (shifts) form group "bn_bias" at this multiple of
  // the LR, with --weight-decay divided by it, so lr x weight decay is the default group's.
  double bn_bias_lr_factor = 1.0;
  // --freeze PATTERN[:EPOCHS] (repeatable): the parameters whose names match the glob form a
  // group that is frozen from the start (no EPOCHS, or 0) or after EPOCHS epochs. Each value
  // parses (parse_freeze) once validate() has passed.
  std::vector<std::string> freeze;
  optim::LrScheduleKind lr_schedule = optim::LrScheduleKind::step;
  // piecewise: (fraction of the run, LR factor) points, linearly interpolated per step
  std::vector<std::pair<double, double>> lr_points;
  // linear-warmup-decay: the points (0, start), (warmup fraction, 1), (1, end)
  double warmup_fraction = 0.23, lr_start_factor = 0.2, lr_end_factor = 0.07;
  std::vector<double> lr_milestones;  // epochs, for step (default: 50% and 75% of epochs)
  double lr_gamma = 0.1;
  double min_lr = 0.0;
  double warmup_epochs = 0.0;
  // Whether schedules move every optimizer step or once per epoch (torch's scheduler.step()
  // per epoch).
  optim::StepUnit lr_step_unit = optim::StepUnit::step;
  // onecycle: torch.optim.lr_scheduler.OneCycleLR's arguments and defaults; with
  // cycle_momentum every group's momentum goes max -> base -> max against the LR.
  // double, as torch's Python floats: 0.3f would move the phase boundary off torch's.
  double onecycle_pct_start = 0.3;
  optim::Anneal onecycle_anneal = optim::Anneal::cos;
  bool onecycle_cycle_momentum = true;
  double onecycle_base_momentum = 0.85;
  double onecycle_max_momentum = 0.95;
  double onecycle_div_factor = 25.0;
  double onecycle_final_div_factor = 1e4;
  LookaheadSettings lookahead;  // train/lookahead_callback.h
  // run
  // (device, threads, pin_threads, precision, deterministic: DeviceOptions)
  bool cuda_graphs = true;  // CUDA: replay full-size steps as captured graphs
  uint64_t seed = 0;
  std::string output_dir = "output";
  std::string run_name;         // default: <arch>-<dataset>-<timestamp>
  bool overwrite = false;
  int eval_every = 1;            // epochs; 0 = only at the end
  int tta = 0;                   // test-time augmentation level of every evaluation (tta_views)
  int log_every = 50;            // steps
  int checkpoint_every = 1;      // epochs; 0 = only at the end
  int64_t checkpoint_every_steps = 0;   // 0 = off
  float checkpoint_every_minutes = 0;   // 0 = off
  int keep_checkpoints = 1;             // > 1: also keep the newest K as checkpoint-e*-s*.h5
  ResumeRequest resume;                 // --resume none | auto | path of a checkpoint
  bool requeue = true;                  // under Slurm, requeue the job after a preemption checkpoint
  int64_t max_steps_per_epoch = 0;  // 0 = whole epoch (short runs for tests/benchmarks)
  // --stop-after-steps N: the run ends after N optimizer steps (evaluated and written as at its
  // end) while the LR schedule and Lookahead still span total_steps: a benchmark of a run's
  // first steps (the PyTorch peers' --max-steps). 0: off.
  int64_t stop_after_steps = 0;
  // data parallelism
  CommRequest comm = CommRequest::automatic;  // how gradients are averaged over ranks
  double bucket_mb = 25.0;    // gradient bucket size (MiB), as DDP's bucket_cap_mb
  bool broadcast_buffers = true;  // rank 0's BN statistics to every rank each step (DDP's default)
  bool sync_bn = false;  // BN batch statistics over every rank (torch's SyncBatchNorm)
  // fault injection for tests (lib/comm/fault_injection.h); 0 = off
  int64_t fail_at_step = 0;
  int fail_rank = 0;
  FaultMode fail_mode = FaultMode::error;
  // reliability (lib/train/step_guard.h)
  int max_consecutive_skips = 5;     // non-finite steps in a row before the job stops
  float collective_timeout = 600;    // seconds without progress; 0 = no watchdog
  int64_t inject_nan_at_step = 0;    // test only: poison one rank's loss gradient; 0 = off
  int inject_nan_rank = 0;
  int64_t inject_nan_steps = 1;
  int64_t pause_at_step = 0;  // test only: every rank waits here for SIGUSR1/SIGTERM; 0 = off
  bool pause_in_eval = false;  // test only: rank 0 waits for a signal after its first eval batch
  std::string dump_samples;   // test only: each rank appends its batches' sample indices here

  // Every option's effective value as text, for metrics.h5's /config attributes.
  std::map<std::string, std::string> effective;
};

// The run's optimizer steps: epochs x steps_per_epoch, or ceil(epochs_fraction x
// steps_per_epoch) for fractional --epochs.
inline int64_t total_steps(const TrainConfig& c, int64_t steps_per_epoch) {
  if (c.epochs_fraction > 0)
    return static_cast<int64_t>(std::ceil(c.epochs_fraction * double(steps_per_epoch)));
  return int64_t(c.epochs) * steps_per_epoch;
}

// The steps this run trains: total_steps, or fewer with --stop-after-steps.
inline int64_t steps_to_run(const TrainConfig& c, int64_t steps_per_epoch) {
  const int64_t all = total_steps(c, steps_per_epoch);
  return c.stop_after_steps > 0 ? std::min(all, c.stop_after_steps) : all;
}

// The steps epoch `epoch` (1-based) trains: all of them, or fewer in the last epoch of a run
// that a fractional --epochs or --stop-after-steps ends early.
inline int64_t steps_in_epoch(const TrainConfig& c, int64_t steps_per_epoch, int64_t epoch) {
  return std::min(steps_per_epoch,
                  steps_to_run(c, steps_per_epoch) - (epoch - 1) * steps_per_epoch);
}

// The epoch of the run's last step: its evaluation is the final one.
inline int64_t last_epoch_of_run(const TrainConfig& c, int64_t steps_per_epoch) {
  return (steps_to_run(c, steps_per_epoch) + steps_per_epoch - 1) / steps_per_epoch;
}

// A --freeze value: the glob over parameter names and the epochs it trains before freezing
// (0: frozen from the start). Throws UsageError naming --freeze for a malformed value.
struct FreezeSpec {
  std::string pattern;
  int64_t after_epochs = 0;
};
FreezeSpec parse_freeze(const std::string& value);

// Parses `dptrain train` arguments (argv[0] is the subcommand). Throws UsageError.
// Returns false when --help was given (help text already printed).
bool parse_train_config(const std::vector<std::string>& args, TrainConfig& config);

}  // namespace dp
