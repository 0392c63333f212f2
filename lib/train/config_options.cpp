// `dptrain train`'s options: the Boost.Program_options tables, grouped as --help prints them.
#include <boost/program_options.hpp>
#include <charconv>
#include <cmath>

#include <fmt/ranges.h>

#include "core/error.h"
#include "nn/model.h"
#include "optim/lr_schedule.h"
#include "train/command_line.h"
#include "train/config.h"
#include "train/config_parts.h"

namespace po = boost::program_options;

namespace dp {

namespace {

// Far beyond any real run; keeps the conversion to whole epochs in range.
constexpr double kMaxEpochs = 1e6;

// --config is read from the parsed command line, before notify() (config.cpp).
po::options_description general_options() {
  po::options_description general("General");
  general.add_options()
      ("help,h", "print this help")
      ("config", po::value<std::string>(), "config file (key = value lines; see jobs/*.cfg)");
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
      ("normalize", bool_option(c.normalize),
       "normalise with the dataset's per-channel mean/std")
      ("prefetch", po::value(&c.prefetch)->default_value(c.prefetch),
       "batches prepared ahead by the loader thread (2 to 64)")
      ("augment-on", enum_option(c.augment_on, "augment-on"),
       "where crop/flip/normalise run: host (loader thread), device (the backend, from raw "
       "pixels) or auto (device on CUDA, host on CPU)");
  return data;
}

po::options_description model_options(TrainConfig& c) {
  po::options_description model("Model");
  model.add_options()
      ("arch", po::value(&c.arch)->default_value(c.arch),
       fmt::format("the network: {} (README's --arch row says what each is)",
                   fmt::join(nn::model_names(), ", ")).c_str())
      ("shortcut",
       po::value<std::string>()->default_value("auto")->notifier(
           [&c](const std::string& v) { c.shortcut = nn::parse_shortcut(v); }),
       "where a block's shape changes: A (identity, subsampled, zero-padded channels; "
       "resnet8-56 only), B (1x1 conv + BN) or auto (A for resnet8-56, else B)")
      ("zero-init-residual",
       bool_option(c.zero_init_residual, /*flag=*/true),
       "zero-init the last BN of each residual block")
      ("whiten-init", po::value(&c.whiten_init)->default_value(c.whiten_init),
       "N > 0: initialise the first convolution (2 C k^2 filters of C x k x k) as the whitening "
       "of every k x k patch of the first N training images, normalised, not augmented: "
       "[+W; -W], W_i = v_i / sqrt(lambda_i + 5e-4) (airbench94's)")
      ("label-smoothing", po::value(&c.label_smoothing)->default_value(c.label_smoothing),
       "label smoothing epsilon of the training loss (the evaluation's loss is the plain "
       "cross-entropy)")
      ("loss-reduction", enum_option(c.loss_reduction, "loss-reduction"),
       "mean: the batch mean of the loss; sum: its sum over the global batch (its gradient too, "
       "on any number of ranks); logs show the mean either way");
  return model;
}

// torch.optim.lr_scheduler.OneCycleLR's arguments, under its names and with its defaults.
void add_onecycle_options(po::options_description& optim, TrainConfig& c, std::string& anneal) {
  optim.add_options()
      ("onecycle-pct-start",
       po::value(&c.onecycle_pct_start)->default_value(c.onecycle_pct_start, "0.3"),
       "one-cycle: fraction of training spent increasing the LR")
      ("onecycle-anneal",
       po::value(&anneal)->default_value(std::string(enum_name(c.onecycle_anneal))),
       "one-cycle: anneal strategy, cos|linear")
      ("onecycle-cycle-momentum",
       bool_option(c.onecycle_cycle_momentum),
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
      ("drop-last", bool_option(c.drop_last, /*flag=*/true),
       "drop each epoch's last partial batch (floor(ceil(N / ranks) / (batch / ranks)) steps)")
      ("batch-size", po::value(&c.batch_size)->default_value(c.batch_size),
       "global batch size (divided over ranks)")
      ("lr", po::value(&c.lr)->default_value(c.lr, "0.1"), "peak learning rate")
      ("momentum", po::value(&c.momentum)->default_value(c.momentum, "0.9"), "SGD momentum")
      ("dampening", po::value(&c.dampening)->default_value(c.dampening),
       "SGD momentum dampening (torch's; not applied on the first update)")
      ("nesterov", bool_option(c.nesterov, /*flag=*/true),
       "Nesterov momentum")
      ("weight-decay", po::value(&c.weight_decay)->default_value(c.weight_decay, "5e-4"), "L2 weight decay")
      ("no-decay-bn-bias",
       bool_option(c.no_decay_bn_bias, /*flag=*/true),
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
                          LateParsedOptions& late) {
  optim.add_options()
      ("lr-schedule", enum_option(c.lr_schedule, "lr-schedule"),
       fmt::format("{}", enum_choices<optim::LrScheduleKind>()).c_str())
      ("lr-points", po::value(&late.points),
       "piecewise: comma-separated FRACTION:FACTOR points (fractions of the run's steps, "
       "ascending), linearly interpolated per step")
      ("warmup-fraction", po::value(&c.warmup_fraction)->default_value(c.warmup_fraction, "0.23"),
       "linear-warmup-decay: the fraction of the run at which the factor peaks at 1")
      ("lr-start-factor", po::value(&c.lr_start_factor)->default_value(c.lr_start_factor, "0.2"),
       "linear-warmup-decay: the LR factor at step 0")
      ("lr-end-factor", po::value(&c.lr_end_factor)->default_value(c.lr_end_factor, "0.07"),
       "linear-warmup-decay: the LR factor at the last step")
      ("lr-milestones", po::value(&late.milestones),
       "step schedule: comma-separated epochs (default: 50% and 75% of --epochs)")
      ("lr-gamma", po::value(&c.lr_gamma)->default_value(c.lr_gamma, "0.1"), "step schedule factor")
      ("min-lr", po::value(&c.min_lr)->default_value(c.min_lr), "cosine schedule floor")
      ("warmup-epochs", po::value(&c.warmup_epochs)->default_value(c.warmup_epochs),
       "linear warm-up length in epochs (fractions allowed with --lr-step-unit step); not for "
       "piecewise and linear-warmup-decay, which warm up through their own points")
      ("lr-step-unit", enum_option(c.lr_step_unit, "lr-step-unit"),
       "step: the schedule moves every optimizer step; epoch: once per epoch, as torch's "
       "scheduler.step() called per epoch");
}

void add_lookahead_options(po::options_description& optim, TrainConfig& c) {
  optim.add_options()
      ("lookahead-every", po::value(&c.lookahead.every)->default_value(c.lookahead.every),
       "Lookahead: every N steps the weights and BN statistics become their running average, "
       "decay base^N (t/T)^power at step t of T; training ends on the average (0: off)")
      ("lookahead-base", po::value(&c.lookahead.base)->default_value(c.lookahead.base, "0.95"),
       "Lookahead: the decay's base")
      ("lookahead-power", po::value(&c.lookahead.power)->default_value(c.lookahead.power, "3"),
       "Lookahead: the power of t/T in the decay")
      ("lookahead-start-epoch",
       po::value(&c.lookahead.start_epoch)->default_value(c.lookahead.start_epoch),
       "Lookahead: the average starts from the weights at its first update after this many "
       "epochs (airbench95: 3); 0: from the initial weights")
      ("lookahead-each-epoch",
       bool_option(c.lookahead.each_epoch, /*flag=*/true),
       "Lookahead: the weights also become the average at the end of every epoch once it has "
       "started (airbench95)");
}

po::options_description optim_options(TrainConfig& c, LateParsedOptions& late) {
  po::options_description optim("Optimisation");
  add_sgd_options(optim, c);
  add_schedule_options(optim, c, late);
  add_lookahead_options(optim, c);
  add_onecycle_options(optim, c, late.anneal);
  return optim;
}

// Where and how the run computes.
void add_compute_options(po::options_description& run, TrainConfig& c) {
  add_device_options(run, c);
  run.add_options()
      ("cuda-graphs", bool_option(c.cuda_graphs),
       "CUDA: capture forward, loss and backward of a full-size step once and replay it as one "
       "launch (falls back to eager steps, with a log line, where capture fails)")
      ("seed", unsigned_option(c.seed), "seed of init, sampling and augmentation");
}

// Where the run writes, how often, and how it continues.
void add_output_options(po::options_description& run, TrainConfig& c) {
  run.add_options()
      ("output-dir", po::value(&c.output_dir)->default_value(c.output_dir), "where runs are written")
      ("run-name", po::value(&c.run_name),
       "run directory name (default: arch-dataset-time; arch-dataset-slurmJOBID in a Slurm job "
       "with --resume auto, so that a requeued job continues it)")
      ("overwrite", bool_option(c.overwrite, /*flag=*/true),
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
      ("resume",
       po::value<std::string>()->default_value("none")->notifier(
           [&c](const std::string& v) { c.resume = parse_resume_option(v); }),
       "none: start fresh; auto: continue from the newest checkpoint in the run directory "
       "(fresh when there is none); PATH: continue from that checkpoint")
      ("requeue", bool_option(c.requeue),
       "under Slurm, after SIGUSR1/SIGTERM and its checkpoint, requeue the job (scontrol requeue)")
      ("max-steps-per-epoch", po::value(&c.max_steps_per_epoch)->default_value(c.max_steps_per_epoch),
       "cut epochs short (0: full epochs)")
      ("stop-after-steps", po::value(&c.stop_after_steps)->default_value(c.stop_after_steps),
       "end the run after N optimizer steps, evaluating and writing as at its end, while the LR "
       "schedule and Lookahead still span the whole run (a benchmark of its first steps; 0: off)");
}

po::options_description run_options(TrainConfig& c) {
  po::options_description run("Run");
  add_compute_options(run, c);
  add_output_options(run, c);
  return run;
}

po::options_description parallel_options(TrainConfig& c) {
  po::options_description parallel("Data parallelism");
  parallel.add_options()
      ("comm", enum_option(c.comm, "comm"),
       "gradient averaging: auto|nccl|mpi (auto: nccl for GPU gradients, else mpi)")
      ("bucket-mb", po::value(&c.bucket_mb)->default_value(c.bucket_mb),
       "gradient allreduce bucket size in MiB (buckets overlap backward)")
      ("broadcast-buffers", bool_option(c.broadcast_buffers),
       "copy rank 0's BatchNorm running statistics to every rank after each step's forward "
       "(DDP's broadcast_buffers=True copies them before the next forward: the same wherever "
       "they are read), so evaluation and checkpoints see one model; false: each rank keeps "
       "its own")
      ("sync-bn", bool_option(c.sync_bn, /*flag=*/true),
       "BatchNorm in training normalises with the statistics of every rank's samples together, "
       "with the matching reductions in backward (torch's SyncBatchNorm): N ranks x batch B/N "
       "then train as 1 rank x batch B; off by default, as torch needs convert_sync_batchnorm");
  return parallel;
}

po::options_description testing_options(TrainConfig& c) {
  po::options_description testing("Testing (fault injection)");
  testing.add_options()
      ("fail-at-step", po::value(&c.fail_at_step)->default_value(c.fail_at_step),
       "make one rank fail at this global step (1-based; 0: never; -1: in the start-up, "
       "before the ranks broadcast the initial weights)")
      ("fail-rank", po::value(&c.fail_rank)->default_value(c.fail_rank), "the rank that fails")
      ("fail-mode", enum_option(c.fail_mode, "fail-mode"),
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
      ("pause-in-eval", bool_option(c.pause_in_eval),
       "rank 0 waits after the first batch of its first evaluation until SIGUSR1 or SIGTERM "
       "arrives (at most 5 minutes), so a test can signal the run during an evaluation")
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
       "end the job (exit code 5) when a rank made no progress (a training step, an evaluation "
       "batch; counted from the job's start) for this many seconds: a stalled rank or a hung "
       "collective (0: never). Must exceed the start-up to the first step's forward pass and "
       "the longest checkpoint write");
  return reliability;
}

}  // namespace

po::options_description describe_train_options(TrainConfig& c, LateParsedOptions& late) {
  po::options_description all("dptrain train options");
  all.add(general_options()).add(data_options(c)).add(model_options(c));
  all.add(optim_options(c, late)).add(run_options(c)).add(parallel_options(c));
  all.add(reliability_options(c)).add(testing_options(c));
  return all;
}

}  // namespace dp
