#include "train/config.h"

#include <boost/program_options.hpp>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <set>
#include <sstream>

#include "core/error.h"
#include "nn/model.h"
#include "train/augmentation.h"
#include "train/checkpoint_files.h"
#include <fmt/ranges.h>

namespace po = boost::program_options;

namespace dp {

namespace {

// Upper bounds that keep the conversions to whole epochs and to bucket bytes in range (and are
// far beyond any real run).
constexpr double kMaxEpochs = 1e6;
constexpr double kMaxBucketMb = 1 << 20;  // 1 TiB

po::options_description general_options(std::string& config_file) {
  po::options_description general("General");
  general.add_options()
      ("help,h", "print this help")
      ("config", po::value(&config_file), "config file (key = value lines; see jobs/*.cfg)");
  return general;
}

po::options_description data_options(TrainConfig& c) {
  po::options_description data("Data");
  data.add_options()
      ("data", po::value(&c.data), "packed HDF5 dataset written by `dptrain pack` (required)")
      ("crop-padding", po::value(&c.crop_padding)->default_value(c.crop_padding),
       "random crop with this zero padding; 0 disables")
      ("translate", po::value(&c.translate)->default_value(c.translate),
       "random crop of the image reflect-padded by N (shifts -N..N in x and y), replacing "
       "--crop-padding; 0: off")
      ("flip", po::value<std::string>()->default_value("true")->notifier([&c](const std::string& v) {
         c.alternating_flip = v == "alternating";
         if (v == "alternating" || v == "true" || v == "1" || v == "yes" || v == "on")
           c.flip = true;
         else if (v == "false" || v == "0" || v == "no" || v == "off")
           c.flip = false;
         else
           throw UsageError(fmt::format("option --flip: '{}' is not true, false or alternating", v));
       }),
       "random horizontal flip: true, false, or alternating (each image's flip drawn once, then "
       "inverted every other epoch)")
      ("normalize", po::value(&c.normalize)->default_value(c.normalize),
       "normalise with the dataset's per-channel mean/std")
      ("prefetch", po::value(&c.prefetch)->default_value(c.prefetch),
       "batches prepared ahead by the loader thread")
      ("augment-on", po::value(&c.augment_on)->default_value(c.augment_on),
       "where crop/flip/normalise run: host (loader thread), device (the backend, from raw "
       "pixels) or auto (device on CUDA, host on CPU)");
  return data;
}

po::options_description model_options(TrainConfig& c) {
  po::options_description model("Model");
  model.add_options()
      ("arch", po::value(&c.arch)->default_value(c.arch),
       "resnet18|34|50 (ImageNet stem), resnet18_cifar|34_cifar|50_cifar, resnet8|20|32|44|56, "
       "airbench94|95")
      ("shortcut", po::value(&c.shortcut)->default_value(c.shortcut),
       "where a block's shape changes: A (identity, subsampled, zero-padded channels; "
       "resnet8-56 only), B (1x1 conv + BN) or auto (A for resnet8-56, else B)")
      ("zero-init-residual",
       po::value(&c.zero_init_residual)->default_value(c.zero_init_residual)->implicit_value(true),
       "zero-init the last BN of each residual block")
      ("whiten-init", po::value(&c.whiten_init)->default_value(c.whiten_init),
       "N > 0: initialise the first convolution (2 C k^2 filters of C x k x k) as the whitening "
       "of every k x k patch of the first N training images, normalised, not augmented: "
       "[+W; -W], W_i = v_i / sqrt(lambda_i + 5e-4) (airbench94's)")
      ("label-smoothing", po::value(&c.label_smoothing)->default_value(c.label_smoothing),
       "label smoothing epsilon")
      ("loss-reduction", po::value(&c.loss_reduction)->default_value(c.loss_reduction),
       "mean: the batch mean of the loss; sum: its sum over the global batch (its gradient too, "
       "on any number of ranks); logs show the mean either way");
  return model;
}

// torch.optim.lr_scheduler.OneCycleLR's arguments, under its names and with its defaults.
void add_onecycle_options(po::options_description& optim, TrainConfig& c) {
  optim.add_options()
      ("onecycle-pct-start",
       po::value(&c.onecycle_pct_start)->default_value(c.onecycle_pct_start, "0.3"),
       "one-cycle: fraction of training spent increasing the LR")
      ("onecycle-anneal", po::value(&c.onecycle_anneal)->default_value(c.onecycle_anneal),
       "one-cycle: anneal strategy, cos|linear")
      ("onecycle-cycle-momentum",
       po::value(&c.onecycle_cycle_momentum)->default_value(c.onecycle_cycle_momentum, "true"),
       "one-cycle: momentum goes max -> base -> max against the LR (overrides --momentum)")
      ("onecycle-base-momentum",
       po::value(&c.onecycle_base_momentum)->default_value(c.onecycle_base_momentum, "0.85"),
       "one-cycle: momentum at the LR's peak")
      ("onecycle-max-momentum",
       po::value(&c.onecycle_max_momentum)->default_value(c.onecycle_max_momentum, "0.95"),
       "one-cycle: momentum at the start and the end")
      ("onecycle-div-factor",
       po::value(&c.onecycle_div_factor)->default_value(c.onecycle_div_factor, "25"),
       "one-cycle: initial LR = --lr / div factor")
      ("onecycle-final-div-factor",
       po::value(&c.onecycle_final_div_factor)->default_value(c.onecycle_final_div_factor, "1e4"),
       "one-cycle: final LR = initial LR / final div factor");
}

// The run's length, the SGD update and its parameter groups.
void add_sgd_options(po::options_description& optim, TrainConfig& c) {
  optim.add_options()
      ("epochs", po::value<double>()->default_value(10.0, "10")->notifier([&c](double e) {
         if (!(e > 0 && e <= kMaxEpochs))
           throw UsageError(fmt::format("option --epochs: must be in (0, {}]", kMaxEpochs));
         c.epochs = static_cast<int>(std::ceil(e));
         c.epochs_fraction = e == std::floor(e) ? 0.0 : e;
       }),
       "epochs; a fraction E stops the run after ceil(E x steps per epoch) steps")
      ("drop-last", po::value(&c.drop_last)->default_value(c.drop_last)->implicit_value(true),
       "drop each epoch's last partial batch (floor(ceil(N / ranks) / (batch / ranks)) steps)")
      ("batch-size", po::value(&c.batch_size)->default_value(c.batch_size),
       "global batch size (divided over ranks)")
      ("lr", po::value(&c.lr)->default_value(c.lr), "peak learning rate")
      ("momentum", po::value(&c.momentum)->default_value(c.momentum), "SGD momentum")
      ("dampening", po::value(&c.dampening)->default_value(c.dampening),
       "SGD momentum dampening (torch's; not applied on the first update)")
      ("nesterov", po::value(&c.nesterov)->default_value(c.nesterov)->implicit_value(true),
       "Nesterov momentum")
      ("weight-decay", po::value(&c.weight_decay)->default_value(c.weight_decay), "L2 weight decay")
      ("no-decay-bn-bias",
       po::value(&c.no_decay_bn_bias)->default_value(c.no_decay_bn_bias)->implicit_value(true),
       "no weight decay on BN parameters and biases")
      ("bn-bias-lr-factor", po::value(&c.bn_bias_lr_factor)->default_value(1.0, "1"),
       "BN biases train at this multiple of the LR, with the weight decay divided by it (lr x "
       "weight decay as the other parameters'); 1: no group of their own")
      ("freeze", po::value(&c.freeze),
       "PATTERN[:EPOCHS], repeatable: parameters whose names match the glob are not updated, "
       "for the whole run or after EPOCHS epochs (e.g. conv1.weight, conv1.bias:3); on the "
       "command line, the list replaces the config file's");
}

// The LR schedule; --lr-milestones and --lr-points are parsed after the options are read.
void add_schedule_options(po::options_description& optim, TrainConfig& c,
                          std::string& milestones, std::string& points) {
  optim.add_options()
      ("lr-schedule", po::value(&c.lr_schedule)->default_value(c.lr_schedule),
       "constant|step|cosine|onecycle|piecewise|linear-warmup-decay")
      ("lr-points", po::value(&points),
       "piecewise: comma-separated FRACTION:FACTOR points (fractions of the run's steps, "
       "ascending), linearly interpolated per step")
      ("warmup-fraction", po::value(&c.warmup_fraction)->default_value(c.warmup_fraction, "0.23"),
       "linear-warmup-decay: the fraction of the run at which the factor peaks at 1")
      ("lr-start-factor", po::value(&c.lr_start_factor)->default_value(c.lr_start_factor, "0.2"),
       "linear-warmup-decay: the LR factor at step 0")
      ("lr-end-factor", po::value(&c.lr_end_factor)->default_value(c.lr_end_factor, "0.07"),
       "linear-warmup-decay: the LR factor at the last step")
      ("lr-milestones", po::value(&milestones),
       "step schedule: comma-separated epochs (default: 50% and 75% of --epochs)")
      ("lr-gamma", po::value(&c.lr_gamma)->default_value(c.lr_gamma), "step schedule factor")
      ("min-lr", po::value(&c.min_lr)->default_value(c.min_lr), "cosine schedule floor")
      ("warmup-epochs", po::value(&c.warmup_epochs)->default_value(c.warmup_epochs),
       "linear warm-up length in epochs (fractions allowed with --lr-step-unit step)")
      ("lr-step-unit", po::value(&c.lr_step_unit)->default_value(c.lr_step_unit),
       "step: the schedule moves every optimizer step; epoch: once per epoch, as torch's "
       "scheduler.step() called per epoch");
}

void add_lookahead_options(po::options_description& optim, TrainConfig& c) {
  optim.add_options()
      ("lookahead-every", po::value(&c.lookahead_every)->default_value(c.lookahead_every),
       "Lookahead: every N steps the weights and BN statistics become their running average, "
       "decay base^N (t/T)^power at step t of T; training ends on the average (0: off)")
      ("lookahead-base", po::value(&c.lookahead_base)->default_value(c.lookahead_base, "0.95"),
       "Lookahead: the decay's base")
      ("lookahead-power", po::value(&c.lookahead_power)->default_value(c.lookahead_power, "3"),
       "Lookahead: the power of t/T in the decay")
      ("lookahead-start-epoch",
       po::value(&c.lookahead_start_epoch)->default_value(c.lookahead_start_epoch),
       "Lookahead: the average starts from the weights at its first update after this many "
       "epochs (airbench95: 3); 0: from the initial weights")
      ("lookahead-each-epoch",
       po::value(&c.lookahead_each_epoch)
           ->default_value(c.lookahead_each_epoch)
           ->implicit_value(true),
       "Lookahead: the weights also become the average at the end of every epoch once it has "
       "started (airbench95)");
}

po::options_description optim_options(TrainConfig& c, std::string& milestones,
                                      std::string& points) {
  po::options_description optim("Optimisation");
  add_sgd_options(optim, c);
  add_schedule_options(optim, c, milestones, points);
  add_lookahead_options(optim, c);
  add_onecycle_options(optim, c);
  return optim;
}

// Where and how the run computes.
void add_device_options(po::options_description& run, TrainConfig& c) {
  run.add_options()
      ("device", po::value(&c.device)->default_value(c.device), "auto|cpu|cuda")
      ("threads", po::value(&c.threads)->default_value(c.threads), "compute threads per rank (0: all)")
      ("pin-threads", po::value(&c.pin_threads)->default_value(c.pin_threads),
       "CPU: bind each compute thread to its own core (this rank's share of the node)")
      ("precision", po::value(&c.precision)->default_value(c.precision),
       "fp32 (strict), tf32 (CUDA tensor cores) or bf16 (CUDA: mixed precision, bf16 "
       "activations, f32 weights, statistics and optimizer; CPU with AVX512-BF16 or AMX: "
       "convolutions on bf16 operands with f32 results, and the airbench networks' "
       "activations in bf16)")
      ("deterministic",
       po::value(&c.deterministic)->default_value(c.deterministic)->implicit_value(true),
       "CUDA: deterministic cuDNN algorithms only (bitwise repeatable runs)")
      ("cuda-graphs", po::value(&c.cuda_graphs)->default_value(c.cuda_graphs),
       "CUDA: capture forward, loss and backward of a full-size step once and replay it as one "
       "launch (falls back to eager steps, with a log line, where capture fails)")
      ("seed", po::value(&c.seed)->default_value(c.seed), "seed of init, sampling and augmentation");
}

// Where the run writes, how often, and how it continues.
void add_output_options(po::options_description& run, TrainConfig& c) {
  run.add_options()
      ("output-dir", po::value(&c.output_dir)->default_value(c.output_dir), "where runs are written")
      ("run-name", po::value(&c.run_name), "run directory name (default: arch-dataset-time)")
      ("overwrite", po::value(&c.overwrite)->default_value(c.overwrite)->implicit_value(true),
       "replace an existing run directory's outputs")
      ("eval-every", po::value(&c.eval_every)->default_value(c.eval_every),
       "evaluate on the test split every N epochs (0: only at the end)")
      ("tta", po::value(&c.tta)->default_value(c.tta),
       "test-time augmentation of every evaluation: 0 the image, 1 + its mirror, 2 + both on "
       "the image shifted one pixel diagonally each way (reflect padding): 6 passes")
      ("log-every", po::value(&c.log_every)->default_value(c.log_every), "progress line every N steps")
      ("checkpoint-every", po::value(&c.checkpoint_every)->default_value(c.checkpoint_every),
       "write checkpoint.h5 every N epochs (0: only at the end)")
      ("checkpoint-every-steps",
       po::value(&c.checkpoint_every_steps)->default_value(c.checkpoint_every_steps),
       "also checkpoint every N optimizer steps, inside epochs (0: off)")
      ("checkpoint-every-minutes",
       po::value(&c.checkpoint_every_minutes)->default_value(c.checkpoint_every_minutes),
       "also checkpoint when N minutes have passed since the last one (0: off)")
      ("keep-checkpoints", po::value(&c.keep_checkpoints)->default_value(c.keep_checkpoints),
       "checkpoints kept: the newest is checkpoint.h5; with N > 1 the N newest are also kept "
       "as checkpoint-eEEEE-sSSSSSS.h5")
      ("resume", po::value(&c.resume)->default_value(c.resume),
       "none: start fresh; auto: continue from the newest checkpoint in the run directory "
       "(fresh when there is none); PATH: continue from that checkpoint")
      ("requeue", po::value(&c.requeue)->default_value(c.requeue),
       "under Slurm, after SIGUSR1/SIGTERM and its checkpoint, requeue the job (scontrol requeue)")
      ("max-steps-per-epoch", po::value(&c.max_steps_per_epoch)->default_value(c.max_steps_per_epoch),
       "cut epochs short (0: full epochs)")
      ("stop-after-steps", po::value(&c.stop_after_steps)->default_value(c.stop_after_steps),
       "end the run after N optimizer steps, evaluating and writing as at its end, while the LR "
       "schedule and Lookahead still span the whole run (a benchmark of its first steps; 0: off)");
}

po::options_description run_options(TrainConfig& c) {
  po::options_description run("Run");
  add_device_options(run, c);
  add_output_options(run, c);
  return run;
}

po::options_description parallel_options(TrainConfig& c) {
  po::options_description parallel("Data parallelism");
  parallel.add_options()
      ("comm", po::value(&c.comm)->default_value(c.comm),
       "gradient averaging: auto|nccl|mpi (auto: nccl for GPU gradients, else mpi)")
      ("bucket-mb", po::value(&c.bucket_mb)->default_value(c.bucket_mb),
       "gradient allreduce bucket size in MiB (buckets overlap backward)")
      ("broadcast-buffers", po::value(&c.broadcast_buffers)->default_value(c.broadcast_buffers),
       "copy rank 0's BatchNorm running statistics to every rank after each step's forward, as "
       "DDP's broadcast_buffers=True, so evaluation and checkpoints see one model; false: each "
       "rank keeps its own")
      ("sync-bn", po::value(&c.sync_bn)->default_value(c.sync_bn)->implicit_value(true),
       "BatchNorm in training normalises with the statistics of every rank's samples together, "
       "with the matching reductions in backward (torch's SyncBatchNorm): N ranks x batch B/N "
       "then train as 1 rank x batch B; off by default, as torch needs convert_sync_batchnorm");
  return parallel;
}

po::options_description testing_options(TrainConfig& c) {
  po::options_description testing("Testing (fault injection)");
  testing.add_options()
      ("fail-at-step", po::value(&c.fail_at_step)->default_value(c.fail_at_step),
       "make one rank fail at this global step (1-based; 0: never)")
      ("fail-rank", po::value(&c.fail_rank)->default_value(c.fail_rank), "the rank that fails")
      ("fail-mode", po::value(&c.fail_mode)->default_value(c.fail_mode),
       "error: throw an error; kill: SIGKILL itself; stall: hang forever")
      ("inject-nan-at-step", po::value(&c.inject_nan_at_step)->default_value(c.inject_nan_at_step),
       "poison one rank's loss gradient with NaN from this global step on (0: never)")
      ("inject-nan-rank", po::value(&c.inject_nan_rank)->default_value(c.inject_nan_rank),
       "the rank whose gradient is poisoned")
      ("inject-nan-steps", po::value(&c.inject_nan_steps)->default_value(c.inject_nan_steps),
       "how many consecutive steps are poisoned")
      ("pause-at-step", po::value(&c.pause_at_step)->default_value(c.pause_at_step),
       "every rank waits at this global step until SIGUSR1 or SIGTERM arrives (at most 5 "
       "minutes), so a test can signal the run at a known step (0: never)")
      ("dump-samples", po::value(&c.dump_samples)->default_value(c.dump_samples),
       "each rank r appends one line per training step to PATH.r: epoch, step in the epoch, "
       "global step (1-based), then the dataset indices of its batch (empty: off)");
  return testing;
}

po::options_description reliability_options(TrainConfig& c) {
  po::options_description reliability("Reliability");
  reliability.add_options()
      ("max-consecutive-skips",
       po::value(&c.max_consecutive_skips)->default_value(c.max_consecutive_skips),
       "a step with a non-finite loss or gradient norm on any rank is skipped on all ranks; "
       "stop (exit code 4) after this many in a row")
      ("collective-timeout", po::value(&c.collective_timeout)->default_value(c.collective_timeout),
       "end the job (exit code 5) when no training step finished for this many seconds: a "
       "stalled rank or a hung collective (0: never). Must exceed the longest evaluation or "
       "checkpoint write");
  return reliability;
}

po::options_description describe(TrainConfig& c, std::string& config_file,
                                 std::string& milestones, std::string& points) {
  po::options_description all("dptrain train options");
  all.add(general_options(config_file)).add(data_options(c)).add(model_options(c));
  all.add(optim_options(c, milestones, points)).add(run_options(c)).add(parallel_options(c));
  all.add(reliability_options(c)).add(testing_options(c));
  return all;
}

// "f:v,f:v,..." -> (f, v) pairs; UsageError naming --lr-points otherwise.
std::vector<std::pair<double, double>> parse_points(const std::string& text) {
  std::vector<std::pair<double, double>> points;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    const size_t colon = item.find(':');
    try {
      if (colon == std::string::npos) throw std::invalid_argument(item);
      size_t used_f = 0, used_v = 0;
      const double f = std::stod(item.substr(0, colon), &used_f);
      const double v = std::stod(item.substr(colon + 1), &used_v);
      if (used_f != colon || used_v != item.size() - colon - 1) throw std::invalid_argument(item);
      points.emplace_back(f, v);
    } catch (const std::exception&) {
      throw UsageError(fmt::format("option --lr-points: '{}' is not FRACTION:FACTOR", item));
    }
  }
  return points;
}

std::vector<double> parse_milestones(const std::string& text) {
  std::vector<double> values;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    try {
      size_t used = 0;
      values.push_back(std::stod(item, &used));
      if (used != item.size()) throw std::invalid_argument(item);
    } catch (const std::exception&) {
      throw UsageError(fmt::format("option --lr-milestones: '{}' is not a number", item));
    }
  }
  return values;
}

void require(bool ok, const std::string& option, const std::string& why) {
  if (!ok) throw UsageError(fmt::format("option --{}: {}", option, why));
}

// 50% and 75% of the run; whole epochs (rounded) when the schedule steps per epoch, where a
// milestone that rounds to 0 or to the end is dropped.
std::vector<double> default_milestones(double epochs, bool whole) {
  std::vector<double> milestones;
  for (double m : {epochs * 0.5, epochs * 0.75}) {
    if (whole) m = std::round(m);
    if (m > 0 && m < epochs && (milestones.empty() || m > milestones.back()))
      milestones.push_back(m);
  }
  return milestones;
}

// The options one schedule alone reads, checked only when it is the schedule (a config file's
// options for a schedule the command line replaced stay unused: see
// refuse_unread_schedule_options).
void validate_step_schedule(const TrainConfig& c) {
  require(c.lr_gamma > 0, "lr-gamma", "must be positive");
  for (size_t i = 0; i < c.lr_milestones.size(); ++i) {
    const double m = c.lr_milestones[i];
    require(m > 0 && (i == 0 || m >= c.lr_milestones[i - 1]), "lr-milestones",
            "must be positive and ascending");
    // One at or past --epochs is never reached, as with torch's MultiStepLR (the run logs it).
    require(c.lr_step_unit != "epoch" || m == std::floor(m), "lr-milestones",
            "must be whole epochs with --lr-step-unit epoch");
  }
}

void validate_onecycle_schedule(const TrainConfig& c) {
  require(c.onecycle_anneal == "cos" || c.onecycle_anneal == "linear", "onecycle-anneal",
          "must be cos or linear");
  require(c.onecycle_pct_start > 0 && c.onecycle_pct_start < 1, "onecycle-pct-start",
          "must be in (0, 1)");
  require(c.onecycle_base_momentum >= 0 && c.onecycle_base_momentum < 1,
          "onecycle-base-momentum", "must be in [0, 1)");
  require(c.onecycle_max_momentum >= 0 && c.onecycle_max_momentum < 1, "onecycle-max-momentum",
          "must be in [0, 1)");
  require(c.onecycle_div_factor > 0, "onecycle-div-factor", "must be positive");
  require(c.onecycle_final_div_factor > 0, "onecycle-final-div-factor", "must be positive");
}

void validate_piecewise_schedule(const TrainConfig& c) {
  require(!c.lr_points.empty(), "lr-points", "is required by --lr-schedule piecewise");
  for (size_t i = 0; i < c.lr_points.size(); ++i)
    require(c.lr_points[i].first >= 0 && c.lr_points[i].first <= 1 && c.lr_points[i].second >= 0 &&
                (i == 0 || c.lr_points[i].first > c.lr_points[i - 1].first),
            "lr-points", "fractions must ascend within [0, 1] and factors be >= 0");
}

// The schedule options torch itself would refuse, named as ours.
void validate_schedule(const TrainConfig& c) {
  require(c.lr_schedule == "constant" || c.lr_schedule == "step" || c.lr_schedule == "cosine" ||
              c.lr_schedule == "onecycle" || c.lr_schedule == "piecewise" ||
              c.lr_schedule == "linear-warmup-decay",
          "lr-schedule",
          "must be constant, step, cosine, onecycle, piecewise or linear-warmup-decay");
  require(c.lr_step_unit == "step" || c.lr_step_unit == "epoch", "lr-step-unit",
          "must be step or epoch");
  require(c.warmup_epochs >= 0 && c.warmup_epochs < c.epochs, "warmup-epochs",
          "must be in [0, epochs)");
  require(c.lr_step_unit != "epoch" || c.warmup_epochs == std::floor(c.warmup_epochs),
          "warmup-epochs", "must be whole with --lr-step-unit epoch");
  if (c.lr_schedule == "step") validate_step_schedule(c);
  if (c.lr_schedule == "cosine")
    require(c.min_lr >= 0 && c.min_lr <= c.lr, "min-lr", "must be in [0, --lr]");
  if (c.lr_schedule == "onecycle") validate_onecycle_schedule(c);
  if (c.lr_schedule == "piecewise") validate_piecewise_schedule(c);
  if (c.lr_schedule == "linear-warmup-decay") {
    require(c.lr_start_factor >= 0 && c.lr_end_factor >= 0, "lr-start-factor",
            "and --lr-end-factor must be >= 0");
    require(c.warmup_fraction > 0 && c.warmup_fraction < 1, "warmup-fraction", "must be in (0, 1)");
  }
}

// The data, the model, the device and the augmentation.
void validate_data_model(const TrainConfig& c) {
  require(!c.data.empty(), "data", "is required (a file written by `dptrain pack`)");
  require(c.epochs >= 1, "epochs", "must be at least 1");
  require(c.batch_size >= 1, "batch-size", "must be at least 1");
  require(c.crop_padding >= 0, "crop-padding", "must not be negative");
  require(c.whiten_init >= 0, "whiten-init", "must not be negative");
  require(c.translate >= 0, "translate", "must not be negative");
  require(c.prefetch >= 2, "prefetch", "must be at least 2 (a batch is read while one computes)");
  require(c.augment_on == "auto" || c.augment_on == "host" || c.augment_on == "device",
          "augment-on", "must be auto, host or device");
  nn::parse_shortcut(c.shortcut);  // the parser owns what --shortcut accepts
  require(c.device == "auto" || c.device == "cpu" || c.device == "cuda", "device",
          "must be auto, cpu or cuda");
  require(c.threads >= 0, "threads", "must not be negative");
  require(c.precision == "fp32" || c.precision == "tf32" || c.precision == "bf16", "precision",
          "must be fp32, tf32 or bf16");
  require(c.precision != "tf32" || c.device != "cpu", "precision",
          "tf32 needs the CUDA backend (--device cuda or auto); the CPU backend has fp32 and bf16");
  tta_views(c.tta);  // throws for a level it has no views for
}

// The optimizer, its parameter groups, the loss and the LR schedule.
void validate_optimization(const TrainConfig& c) {
  require(c.lr > 0, "lr", "must be positive");
  require(c.momentum >= 0 && c.momentum < 1, "momentum", "must be in [0, 1)");
  require(!c.nesterov || c.momentum > 0, "nesterov", "needs --momentum > 0");
  require(c.weight_decay >= 0, "weight-decay", "must not be negative");
  require(c.lookahead_every >= 0, "lookahead-every", "must not be negative");
  require(c.lookahead_base > 0 && c.lookahead_base <= 1 && c.lookahead_power >= 0,
          "lookahead-base", "must be in (0, 1], with --lookahead-power >= 0");
  require(c.lookahead_start_epoch >= 0, "lookahead-start-epoch", "must not be negative");
  require(c.lookahead_start_epoch < c.epochs, "lookahead-start-epoch",
          "must be below the run's epochs (--epochs rounded up): the average would never start");
  require(c.lookahead_every > 0 || (c.lookahead_start_epoch == 0 && !c.lookahead_each_epoch),
          c.lookahead_start_epoch != 0 ? "lookahead-start-epoch" : "lookahead-each-epoch",
          "needs --lookahead-every > 0");
  require(c.bn_bias_lr_factor > 0, "bn-bias-lr-factor", "must be positive");
  for (const std::string& value : c.freeze) parse_freeze(value);
  require(c.label_smoothing >= 0 && c.label_smoothing < 1, "label-smoothing", "must be in [0, 1)");
  require(c.loss_reduction == "mean" || c.loss_reduction == "sum", "loss-reduction",
          "must be mean or sum");
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
  // The run directory is <output-dir>/<run-name>: a path would put it elsewhere.
  require(c.run_name.find('/') == std::string::npos && c.run_name != "." && c.run_name != "..",
          "run-name", "must be a plain name (no '/', not . or ..); --output-dir says where");
  require(!c.resume.empty(), "resume", "must be none, auto or a checkpoint file");
  require(c.resume == "none" || !c.overwrite, "resume", "cannot be combined with --overwrite");
  check_resume_option(c.resume);  // before the run directory exists: a typo leaves nothing
  require(c.max_steps_per_epoch >= 0, "max-steps-per-epoch", "must not be negative");
  require(c.stop_after_steps >= 0, "stop-after-steps", "must not be negative");
  require(c.stop_after_steps == 0 || c.resume == "none", "stop-after-steps",
          "cannot be combined with --resume (a benchmark of a run's first steps)");
  require(c.comm == "auto" || c.comm == "nccl" || c.comm == "mpi", "comm",
          "must be auto, nccl or mpi");
  require(c.bucket_mb > 0 && c.bucket_mb <= kMaxBucketMb, "bucket-mb",
          fmt::format("must be in (0, {}]", kMaxBucketMb));
  require(c.max_consecutive_skips >= 1, "max-consecutive-skips", "must be at least 1");
  require(c.collective_timeout >= 0, "collective-timeout", "must not be negative");
}

// The test-only fault, NaN and pause injection.
void validate_test_hooks(const TrainConfig& c) {
  require(c.fail_at_step >= 0, "fail-at-step", "must not be negative");
  require(c.fail_rank >= 0, "fail-rank", "must not be negative");
  require(c.fail_mode == "error" || c.fail_mode == "kill" || c.fail_mode == "stall", "fail-mode",
          "must be error, kill or stall");
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
      {c.lookahead_base, "lookahead-base"},
      {c.lookahead_power, "lookahead-power"},
      {c.checkpoint_every_minutes, "checkpoint-every-minutes"},
      {c.bucket_mb, "bucket-mb"},
      {c.collective_timeout, "collective-timeout"}};
  for (const auto& [value, option] : values)
    require(std::isfinite(value), option, "must be finite");
}

void validate(const TrainConfig& c) {
  validate_finite(c);
  validate_data_model(c);
  validate_optimization(c);
  validate_schedule(c);
  validate_run_control(c);
  validate_test_hooks(c);
}

std::string value_text(const po::variable_value& v) {
  const auto& any = v.value();
  if (auto p = boost::any_cast<std::string>(&any)) return *p;
  if (auto p = boost::any_cast<int>(&any)) return std::to_string(*p);
  if (auto p = boost::any_cast<int64_t>(&any)) return std::to_string(*p);
  if (auto p = boost::any_cast<uint64_t>(&any)) return std::to_string(*p);
  if (auto p = boost::any_cast<float>(&any)) return fmt::format("{}", *p);
  if (auto p = boost::any_cast<double>(&any)) return fmt::format("{}", *p);
  if (auto p = boost::any_cast<bool>(&any)) return *p ? "true" : "false";
  if (auto p = boost::any_cast<std::vector<std::string>>(&any))
    return fmt::format("{}", fmt::join(*p, " "));
  return "?";
}

}  // namespace

FreezeSpec parse_freeze(const std::string& value) {
  FreezeSpec spec;
  spec.pattern = value;
  const size_t colon = value.rfind(':');
  if (colon != std::string::npos) {
    spec.pattern = value.substr(0, colon);
    const std::string epochs = value.substr(colon + 1);
    const char* end = epochs.data() + epochs.size();
    const auto [stop, error] = std::from_chars(epochs.data(), end, spec.after_epochs);
    if (epochs.empty() || epochs.find_first_not_of("0123456789") != std::string::npos ||
        error != std::errc() || stop != end)  // digits only, in range
      throw UsageError(fmt::format("option --freeze: '{}' is not PATTERN[:EPOCHS]", value));
  }
  if (spec.pattern.empty())
    throw UsageError(fmt::format("option --freeze: '{}' has an empty pattern", value));
  return spec;
}

namespace {

// The options given explicitly (on the command line, or in a config file) rather than defaulted.
std::set<std::string> given_options(const po::variables_map& vm) {
  std::set<std::string> names;
  for (const auto& [name, value] : vm)
    if (!value.defaulted()) names.insert(name);
  return names;
}

// Options that one schedule alone reads: given beside another they would go unused, so they
// are refused where the user put them beside it (on the command line, or in a config file
// whose --lr-schedule the command line left alone; a config file's options for the schedule
// that the command line replaced are left unused, as that replacement asks).
void refuse_unread_schedule_options(const TrainConfig& c, const po::variables_map& vm,
                                    const std::set<std::string>& on_command_line) {
  static const std::pair<const char*, const char*> kReadOnlyBy[] = {
      {"lr-milestones", "step"},
      {"lr-gamma", "step"},
      {"lr-points", "piecewise"},
      {"min-lr", "cosine"},
      {"onecycle-pct-start", "onecycle"},
      {"onecycle-anneal", "onecycle"},
      {"onecycle-div-factor", "onecycle"},
      {"onecycle-final-div-factor", "onecycle"},
      {"onecycle-cycle-momentum", "onecycle"},
      {"onecycle-base-momentum", "onecycle"},
      {"onecycle-max-momentum", "onecycle"},
      {"lr-start-factor", "linear-warmup-decay"},
      {"warmup-fraction", "linear-warmup-decay"},
      {"lr-end-factor", "linear-warmup-decay"}};
  const bool schedule_on_command_line = on_command_line.count("lr-schedule") > 0;
  for (const auto& [option, reader] : kReadOnlyBy) {
    if (c.lr_schedule == reader || !vm.count(option) || vm[option].defaulted()) continue;
    if (on_command_line.count(option) || !schedule_on_command_line)
      throw UsageError(fmt::format("option --{}: is read only by --lr-schedule {}, not {}",
                                   option, reader, c.lr_schedule));
  }
}

}  // namespace

bool parse_train_config(const std::vector<std::string>& args, TrainConfig& config) {
  std::string config_file, milestones, points;
  po::options_description options = describe(config, config_file, milestones, points);
  po::variables_map vm;
  std::set<std::string> on_command_line;
  try {
    po::store(po::command_line_parser(args).options(options).run(), vm);
    on_command_line = given_options(vm);
    if (vm.count("help")) {
      std::cout << "usage: dptrain train --data FILE [options]\n" << options << "\n";
      return false;
    }
    if (vm.count("config")) {
      const std::string& file = vm["config"].as<std::string>();
      std::ifstream in(file);
      if (!std::filesystem::is_regular_file(file) || !in)
        throw UsageError(fmt::format("option --config: cannot read '{}' (not a file)", file));
      try {
        po::store(po::parse_config_file(in, options), vm);
      } catch (const po::error& e) {
        throw UsageError(fmt::format("{}: {}", file, e.what()));
      }
    }
    po::notify(vm);
  } catch (const po::error& e) {
    throw UsageError(e.what());
  }
  if (!milestones.empty()) config.lr_milestones = parse_milestones(milestones);
  if (!points.empty()) config.lr_points = parse_points(points);
  // The step schedule's default milestones: 50% and 75% of --epochs as given, fractional in
  // short or fractional runs; stepped per epoch, whole epochs, dropped where they round to 0
  // or to the end (a 1-epoch run then has none and stays constant). The run logs them.
  const bool per_epoch = config.lr_step_unit == "epoch";  // then the epochs are whole
  if (config.lr_milestones.empty() && config.lr_schedule == "step")
    config.lr_milestones = default_milestones(
        per_epoch || config.epochs_fraction == 0 ? config.epochs : config.epochs_fraction,
        per_epoch);
  validate(config);
  refuse_unread_schedule_options(config, vm, on_command_line);
  for (const auto& [name, value] : vm) {
    if (name == "help") continue;
    config.effective[name] = value_text(value);
  }
  config.effective["lr-milestones"] = fmt::format("{}", fmt::join(config.lr_milestones, ","));
  if (!config.lr_points.empty()) config.effective["lr-points"] = points;
  return true;
}

}  // namespace dp
