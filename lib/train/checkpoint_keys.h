// The attributes a training checkpoint stores beside its tensors (io/checkpoint.h keeps them as
// given), and the names of its per-rank /train_state datasets: written by TrainingCheckpointer
// and record_trained_data, read back by resume,
// `dptrain eval` and the checkpoint lookups. Each name is written once here so a writer and its
// readers cannot drift apart. The names themselves are the file format (README "Checkpoints and
// exact resume"), which users' scripts and older checkpoints hold too: they never change. The
// format's version, which save_checkpoint writes itself, is io/checkpoint.h's
// kFormatVersionAttribute.
#pragma once

namespace dp::checkpoint_keys {

// Integers.
inline constexpr const char* kEpoch = "epoch";  // epochs finished
inline constexpr const char* kStep = "step";    // optimizer updates done
inline constexpr const char* kStepInEpoch = "step_in_epoch";
inline constexpr const char* kStepsPerEpoch = "steps_per_epoch";
inline constexpr const char* kSamplerEpoch = "sampler_epoch";
inline constexpr const char* kSamplerOffset = "sampler_offset";      // per rank
inline constexpr const char* kSamplerConsumed = "sampler_consumed";  // on all ranks together
inline constexpr const char* kSamplerOrderVersion = "sampler_order_version";
inline constexpr const char* kWorldSize = "world_size";
inline constexpr const char* kBatchSize = "batch_size";
inline constexpr const char* kEpochs = "epochs";
inline constexpr const char* kNumClasses = "num_classes";
inline constexpr const char* kInChannels = "in_channels";
inline constexpr const char* kSeed = "seed";
inline constexpr const char* kSyncBn = "sync_bn";
inline constexpr const char* kNormalize = "normalize";
inline constexpr const char* kStopAfterSteps = "stop_after_steps";
inline constexpr const char* kConsecutiveSkippedSteps = "consecutive_skipped_steps";
inline constexpr const char* kEpochSkippedSteps = "epoch_skipped_steps";
inline constexpr const char* kLookaheadEvery = "lookahead_every";
inline constexpr const char* kLookaheadStartEpoch = "lookahead_start_epoch";
inline constexpr const char* kLookaheadEachEpoch = "lookahead_each_epoch";
inline constexpr const char* kTrainSize = "train_size";

// Strings.
inline constexpr const char* kArch = "arch";
inline constexpr const char* kShortcut = "shortcut";
inline constexpr const char* kDataset = "dataset";
inline constexpr const char* kTrigger = "trigger";
inline constexpr const char* kRng = "rng";
inline constexpr const char* kLookaheadBase = "lookahead_base";
inline constexpr const char* kLookaheadPower = "lookahead_power";
inline constexpr const char* kClassNames = "class_names";
inline constexpr const char* kDataSources = "data_sources";
inline constexpr const char* kNormalizeMean = "normalize_mean";
inline constexpr const char* kNormalizeStd = "normalize_std";

// Datasets under /train_state, one row per rank.
inline constexpr const char* kBuffersByRank = "buffers_by_rank";  // BN statistics (f32)
inline constexpr const char* kLookaheadBuffersByRank = "lookahead_buffers_by_rank";  // (f32)
inline constexpr const char* kEpochTotals = "epoch_totals";  // EpochTotals::to_array (f64)

}  // namespace dp::checkpoint_keys
