#include "train/training_checkpoint.h"

#include <algorithm>
#include <vector>

#include "comm/agreed_verdict.h"
#include "core/error.h"
#include "core/log.h"
#include "data/distributed_sampler.h"
#include "train/checkpoint_keys.h"

namespace dp {

namespace key = checkpoint_keys;

namespace {

// The attribute `key` of `values` (meta.ints or meta.strings); a DataError naming the file where
// the checkpoint lacks it.
template <typename Value>
const Value& required(const std::map<std::string, Value>& values, const std::string& key,
                      const std::string& path) {
  const auto it = values.find(key);
  if (it == values.end())
    throw DataError(fmt::format("{}: checkpoint lacks the '{}' attribute", path, key));
  return it->second;
}
int64_t meta_int(const CheckpointMeta& meta, const std::string& key, const std::string& path) {
  return required(meta.ints, key, path);
}
std::string meta_string(const CheckpointMeta& meta, const std::string& key,
                        const std::string& path) {
  return required(meta.strings, key, path);
}

// Every rank loads the one checkpoint against the same options: one verdict, rank 0's line.
[[noreturn]] void refuse(const std::string& path, const std::string& what, const std::string& then,
                         const std::string& now) {
  throw_agreed_verdict(UsageError(fmt::format(
      "option --resume: {} was written with {} {}, this run has {}", path, what, then, now)));
}

// A Lookahead setting as the checkpoint records it: the shortest decimal that reads back as
// the same double, so equal strings are equal settings.
std::string setting_text(double value) { return fmt::format("{}", value); }

// Every rank's `mine` (as long on every rank) as the rows of one (ranks, n) array, gathered
// as doubles (exact for floats). Collective.
std::vector<float> gather_rows(Communicator& comm, const std::vector<float>& mine) {
  const std::vector<double> wide(mine.begin(), mine.end());
  std::vector<double> all(static_cast<size_t>(comm.size()) * wide.size());
  if (!wide.empty()) comm.allgather(wide.data(), static_cast<int64_t>(wide.size()), all.data());
  return {all.begin(), all.end()};
}

// Row `rank` of a (ranks, into.size()) array into `into`.
void take_row(const std::vector<float>& rows, int rank, std::vector<float>& into) {
  const auto first = rows.begin() + static_cast<std::ptrdiff_t>(rank * into.size());
  std::copy(first, first + static_cast<std::ptrdiff_t>(into.size()), into.begin());
}

// Steps done in the checkpoint's current epoch, on this run's steps per epoch: all of them when
// the checkpoint had done all of its own (a stop after an epoch's last step, its end pending),
// whatever the count; otherwise its own count (equal steps per epoch, check_position holds).
int64_t resumed_step_in_epoch(const CheckpointMeta& meta, const std::string& path,
                              int64_t steps_per_epoch) {
  const int64_t step_in_epoch = meta_int(meta, key::kStepInEpoch, path);
  return step_in_epoch == meta_int(meta, key::kStepsPerEpoch, path) ? steps_per_epoch
                                                                    : step_in_epoch;
}

// The global step a resume continues from, on this run's steps per epoch.
int64_t resumed_global_step(const CheckpointMeta& meta, const std::string& path,
                            int64_t steps_per_epoch) {
  return meta_int(meta, key::kEpoch, path) * steps_per_epoch +
         resumed_step_in_epoch(meta, path, steps_per_epoch);
}

// /train_state's rows of `world` ranks: the epoch sums, every rank's BN statistics where
// `with_buffers` and their Lookahead average where also `with_lookahead`. Save and load list the
// same sections through this, so their names and shapes cannot drift apart.
void add_rank_rows(CheckpointSections& sections, int64_t world, int64_t buffer_count,
                   bool with_buffers, float* buffer_rows, bool with_lookahead,
                   float* lookahead_rows, double* totals) {
  if (with_buffers)
    sections.train_state_f32.push_back({key::kBuffersByRank, {world, buffer_count}, buffer_rows});
  if (with_buffers && with_lookahead)
    sections.train_state_f32.push_back(
        {key::kLookaheadBuffersByRank, {world, buffer_count}, lookahead_rows});
  sections.train_state_f64.push_back({key::kEpochTotals, {world, EpochTotals::kFields}, totals});
}

// This rank's share of the epoch sums of `saved_world` old ranks (rows of `totals`), resumed on
// another number of ranks: rank 0's timings, step count and elapsed time for every rank (the
// epoch record reads rank 0's, and each rank's own step time only averages its timings), and
// the samples' loss, correct and sample counts, summed over the old ranks, on rank 0 alone,
// since the epoch record sums them over the new ranks.
EpochTotals regrouped_totals(const std::vector<double>& totals, int64_t saved_world, int rank) {
  EpochTotals mine = EpochTotals::from_array(totals.data());
  mine.loss_sum = 0;
  mine.correct = mine.samples = 0;
  if (rank != 0) return mine;
  for (int64_t r = 0; r < saved_world; ++r) {
    const EpochTotals old = EpochTotals::from_array(totals.data() + r * EpochTotals::kFields);
    mine.loss_sum += old.loss_sum;
    mine.correct += old.correct;
    mine.samples += old.samples;
  }
  return mine;
}

}  // namespace

TrainingCheckpointer::TrainingCheckpointer(nn::Model& model, Tensor& momentum, Communicator& comm,
                                           RunIdentity identity)
    : state_(model, &momentum),
      comm_(comm),
      identity_(std::move(identity)),
      buffer_count_(model.buffers().numel()) {}

void TrainingCheckpointer::track_lookahead(LookaheadAverage& average) {
  lookahead_ = &average;
  state_.include_lookahead(average);
}

void TrainingCheckpointer::check_lookahead_tracked() const {
  DP_CHECK((lookahead_ != nullptr) == (identity_.lookahead.every > 0),
           "--lookahead-every {} with{} a Lookahead average tracked", identity_.lookahead.every,
           lookahead_ ? "" : "out");
}

CheckpointMeta TrainingCheckpointer::checkpoint_meta(const ResumePoint& point, int world,
                                                     CheckpointTrigger trigger) const {
  CheckpointMeta meta;
  const int64_t local_batch = identity_.batch_size / world;
  // "epoch" and "step" keep their meaning from format 1: finished epochs, updates done.
  meta.ints = {{key::kEpoch, point.epochs_done},
               {key::kStep, point.global_step},
               {key::kStepInEpoch, point.step_in_epoch},
               {key::kStepsPerEpoch, identity_.steps_per_epoch},
               {key::kSamplerEpoch, point.epochs_done},
               {key::kSamplerOffset, point.step_in_epoch * local_batch},  // per rank
               // positions of the epoch's order taken, on any number of ranks
               {key::kSamplerConsumed, point.step_in_epoch * identity_.batch_size},
               {key::kWorldSize, world},
               {key::kBatchSize, identity_.batch_size},
               {key::kEpochs, identity_.epochs},
               {key::kNumClasses, identity_.num_classes},
               {key::kInChannels, identity_.in_channels},
               {key::kSeed, static_cast<int64_t>(identity_.seed)},
               {key::kSamplerOrderVersion, data::kSamplerOrderVersion},
               {key::kSyncBn, identity_.sync_bn ? 1 : 0},
               {key::kNormalize, identity_.normalize ? 1 : 0},
               {key::kStopAfterSteps, identity_.stop_after_steps},
               {key::kConsecutiveSkippedSteps, point.consecutive_skips},
               {key::kLookaheadEvery, identity_.lookahead.every}};
  meta.strings = {
      {key::kArch, identity_.arch},
      {key::kShortcut, identity_.shortcut},
      {key::kDataset, identity_.dataset},
      {key::kTrigger, std::string(enum_name(trigger))},
      // Nothing to store: see train/training_state.h.
      {key::kRng, "stateless: every draw is a function of (seed, epoch, sample index)"}};
  record_trained_data(identity_.data, meta);
  if (lookahead_) {
    meta.strings[key::kLookaheadBase] = setting_text(identity_.lookahead.base);
    meta.strings[key::kLookaheadPower] = setting_text(identity_.lookahead.power);
    meta.ints[key::kLookaheadStartEpoch] = identity_.lookahead.start_epoch;
    meta.ints[key::kLookaheadEachEpoch] = identity_.lookahead.each_epoch ? 1 : 0;
  }
  return meta;
}

void TrainingCheckpointer::save(const std::string& path, const ResumePoint& point,
                                const EpochTotals& mine, CheckpointTrigger trigger) {
  check_lookahead_tracked();
  const int world = comm_.size();
  CheckpointSections sections = state_.copy_to_host();

  // Every rank's BN statistics, their Lookahead average and epoch sums.
  std::vector<float> buffers_by_rank = gather_rows(comm_, state_.staged_buffers());
  std::vector<float> lookahead_by_rank =
      lookahead_ ? gather_rows(comm_, lookahead_->buffers) : std::vector<float>();
  const auto my_totals = mine.to_array();
  std::vector<double> all_totals(static_cast<size_t>(world) * EpochTotals::kFields);
  comm_.allgather(my_totals.data(), EpochTotals::kFields, all_totals.data());

  if (comm_.rank() == 0) {
    add_rank_rows(sections, world, buffer_count_, true, buffers_by_rank.data(),
                  lookahead_ != nullptr, lookahead_by_rank.data(), all_totals.data());
    CheckpointMeta meta = checkpoint_meta(point, world, trigger);
    meta.ints[key::kEpochSkippedSteps] = mine.skipped;
    save_checkpoint(path, sections, meta);
  }
  // Nobody leaves before the file is in place: a rank that exits right after a preemption
  // checkpoint would otherwise make mpirun kill rank 0 mid-write.
  comm_.barrier();
}

void TrainingCheckpointer::check_compatible(const std::string& path, const CheckpointMeta& meta) const {
  check_resumable(path, meta);
  check_same_run(path, meta);
  check_position(path, meta);
  check_lookahead(path, meta);
}

void TrainingCheckpointer::check_resumable(const std::string& path, const CheckpointMeta& meta) {
  const int64_t version = meta_int(meta, kFormatVersionAttribute, path);
  if (version < 2)
    throw UsageError(fmt::format(
        "option --resume: {} has checkpoint format {}, written before exact resume existed; it "
        "can be evaluated but not resumed", path, version));
  const int64_t order_version = meta.int_or(key::kSamplerOrderVersion, 1);
  if (order_version != data::kSamplerOrderVersion)
    throw UsageError(fmt::format(
        "option --resume: {} was written under sample order version {} and this build draws "
        "version {} (orders seeded per (seed, epoch), no longer seed + epoch), so it cannot "
        "continue that run exactly; it can still be evaluated (dptrain eval)",
        path, order_version, data::kSamplerOrderVersion));
  if (const int64_t stopped = meta.int_or(key::kStopAfterSteps, 0); stopped > 0)
    throw UsageError(fmt::format(
        "option --resume: {} is from a run cut short by --stop-after-steps {}; it can be "
        "evaluated (dptrain eval) but not resumed",
        path, stopped));
}

void TrainingCheckpointer::check_same_run(const std::string& path,
                                          const CheckpointMeta& meta) const {
  if (meta_string(meta, key::kArch, path) != identity_.arch)
    refuse(path, "--arch", meta_string(meta, key::kArch, path), identity_.arch);
  const std::string shortcut = checkpoint_shortcut(meta);
  if (shortcut != identity_.shortcut) refuse(path, "--shortcut", shortcut, identity_.shortcut);
  if (meta_string(meta, key::kDataset, path) != identity_.dataset)
    refuse(path, "dataset", meta_string(meta, key::kDataset, path), identity_.dataset);
  if (const std::string differs = trained_data_difference(meta, identity_.data); !differs.empty())
    throw DataError(
        fmt::format("option --resume: {} was trained on other data than this run's "
                    "--data: {}",
                    path, differs));
  // As eval refuses it (older checkpoints without the attributes: the model's shapes decide).
  const int64_t classes = meta.int_or(key::kNumClasses, identity_.num_classes);
  const int64_t channels = meta.int_or(key::kInChannels, identity_.in_channels);
  if (classes != identity_.num_classes || channels != identity_.in_channels)
    throw DataError(fmt::format(
        "option --resume: {} is for {} classes x {} channels, this run's --data has {} x {}", path,
        classes, channels, identity_.num_classes, identity_.in_channels));
  recorded_normalization(meta, channels, path);  // throws where the statistics do not parse
  if (meta_int(meta, key::kSeed, path) != static_cast<int64_t>(identity_.seed))
    refuse(path, "--seed", std::to_string(meta_int(meta, key::kSeed, path)),
           std::to_string(identity_.seed));
  if (meta_int(meta, key::kBatchSize, path) != identity_.batch_size)
    refuse(path, "--batch-size", std::to_string(meta_int(meta, key::kBatchSize, path)),
           std::to_string(identity_.batch_size));
  const bool normalized = trained_normalized(meta);
  if (normalized != identity_.normalize)
    refuse(path, "--normalize", normalized ? "true" : "false",
           identity_.normalize ? "true" : "false");
}

void TrainingCheckpointer::check_position(const std::string& path,
                                          const CheckpointMeta& meta) const {
  const int64_t epochs_done = meta_int(meta, key::kEpoch, path);
  const int64_t step_in_epoch = meta_int(meta, key::kStepInEpoch, path);
  const int64_t saved_steps_per_epoch = meta_int(meta, key::kStepsPerEpoch, path);
  // What every checkpoint's counters satisfy: the step count is at most the position (a cut
  // epoch's end counts as a whole epoch done), and an epoch has at least one step. (The
  // position in double: a damaged epoch count must not overflow the product.)
  const int64_t step = meta_int(meta, key::kStep, path);
  const double position = double(epochs_done) * double(saved_steps_per_epoch) + step_in_epoch;
  if (epochs_done < 0 || saved_steps_per_epoch < 1 || step_in_epoch < 0 ||
      step_in_epoch > saved_steps_per_epoch || step < 0 || double(step) > position)
    throw DataError(fmt::format(
        "{}: a damaged checkpoint: its counters disagree (epoch {}, step {}, step_in_epoch {}, "
        "steps_per_epoch {})",
        path, epochs_done, step, step_in_epoch, saved_steps_per_epoch));
  const bool same_steps_per_epoch = saved_steps_per_epoch == identity_.steps_per_epoch;
  // The steps per epoch, ceil(train size / batch) capped by --max-steps-per-epoch, are the
  // same on every world size, so a mid-epoch checkpoint resumes on any number of ranks; with
  // --drop-last they are floor(ceil(size / ranks) / (batch / ranks)), which the world size can
  // change, and then this refuses, but a checkpoint with its epoch's steps all done (its end
  // pending) resumes as one at the epoch's end would.
  const bool steps_all_done = step_in_epoch == saved_steps_per_epoch;
  if (step_in_epoch > 0 && !same_steps_per_epoch && !steps_all_done)
    refuse(path, "steps per epoch", std::to_string(saved_steps_per_epoch),
           std::to_string(identity_.steps_per_epoch) +
               " (--max-steps-per-epoch changed, or, with --drop-last, the number of ranks?)");
  // Past this run's last update (a shorter --epochs, fractional ones included) it would end
  // with a model trained longer than the run, reported as the run's. The updates done are the
  // checkpoint's own count on this run's steps per epoch (the end of a fractional run's cut
  // epoch reads as a whole epoch done); on others (an epoch boundary), the epochs in this run's.
  const int64_t done =
      same_steps_per_epoch ? step : resumed_global_step(meta, path, identity_.steps_per_epoch);
  if (done > identity_.steps_to_run)
    throw UsageError(fmt::format(
        "option --resume: {} is from after {} steps ({} epochs and {} steps), beyond the {} "
        "steps of this run's --epochs ({} steps per epoch)",
        path, done, epochs_done, step_in_epoch, identity_.steps_to_run, identity_.steps_per_epoch));
}

void TrainingCheckpointer::check_lookahead(const std::string& path, const CheckpointMeta& meta) const {
  // Checkpoints from before the average was stored have no attribute: they hold none.
  const int64_t every = meta.int_or(key::kLookaheadEvery, 0);
  const int64_t now = identity_.lookahead.every;
  if (every == 0 && now > 0)
    throw UsageError(fmt::format(
        "option --resume: {} holds no Lookahead average (written without --lookahead-every, or "
        "before checkpoints held it), so this run's --lookahead-every {} cannot continue from it",
        path, now));
  if (every != now) refuse(path, "--lookahead-every", std::to_string(every), std::to_string(now));
  if (every == 0) return;
  const std::string base = meta_string(meta, key::kLookaheadBase, path);
  if (base != setting_text(identity_.lookahead.base))
    refuse(path, "--lookahead-base", base, setting_text(identity_.lookahead.base));
  const std::string power = meta_string(meta, key::kLookaheadPower, path);
  if (power != setting_text(identity_.lookahead.power))
    refuse(path, "--lookahead-power", power, setting_text(identity_.lookahead.power));
  // Checkpoints from before these options existed: the airbench94 behaviour (0, false).
  const int64_t start_epoch = meta.int_or(key::kLookaheadStartEpoch, 0);
  if (start_epoch != identity_.lookahead.start_epoch)
    refuse(path, "--lookahead-start-epoch", std::to_string(start_epoch),
           std::to_string(identity_.lookahead.start_epoch));
  const bool each_epoch = meta.int_or(key::kLookaheadEachEpoch, 0) != 0;
  if (each_epoch != identity_.lookahead.each_epoch)
    refuse(path, "--lookahead-each-epoch", each_epoch ? "true" : "false",
           identity_.lookahead.each_epoch ? "true" : "false");
  // A late start's step follows from the steps per epoch (LookaheadCallback): with another
  // count the checkpoint's average could be taken for started or not started wrongly.
  const int64_t steps_per_epoch = meta_int(meta, key::kStepsPerEpoch, path);
  if (identity_.lookahead.start_epoch > 0 && steps_per_epoch != identity_.steps_per_epoch)
    refuse(path, "steps per epoch", std::to_string(steps_per_epoch),
           std::to_string(identity_.steps_per_epoch) +
               " (--max-steps-per-epoch changed?), which --lookahead-start-epoch needs the same");
}

ResumePoint TrainingCheckpointer::load(const std::string& path, EpochTotals& mine) {
  check_lookahead_tracked();
  const CheckpointMeta meta = read_checkpoint_meta(path);
  check_compatible(path, meta);
  const int64_t saved_world = meta_int(meta, key::kWorldSize, path);
  const bool same_world = saved_world == comm_.size();

  // The model's sections hold rank 0's BN statistics and their Lookahead average; the
  // Lookahead sections load straight into the average.
  CheckpointSections sections = state_.staging_sections();
  const size_t rows_size = static_cast<size_t>(saved_world) * buffer_count_;
  std::vector<float> buffers_by_rank(rows_size), lookahead_by_rank(lookahead_ ? rows_size : 0);
  std::vector<double> totals(static_cast<size_t>(saved_world) * EpochTotals::kFields);
  // From another world size only the sums: the statistics rows would not fit this run's ranks.
  add_rank_rows(sections, saved_world, buffer_count_, same_world, buffers_by_rank.data(),
                lookahead_ != nullptr, lookahead_by_rank.data(), totals.data());
  load_checkpoint(path, sections);
  if (same_world) {
    // Each rank continues with its own BN statistics, their average and epoch sums.
    take_row(buffers_by_rank, comm_.rank(), state_.staged_buffers());
    if (lookahead_) take_row(lookahead_by_rank, comm_.rank(), lookahead_->buffers);
    mine = EpochTotals::from_array(totals.data() + comm_.rank() * EpochTotals::kFields);
  } else {
    // Another world size: every rank starts from rank 0's BN statistics and their average (the
    // model's sections), as DDP's broadcast_buffers would give it, and the epoch's sums are
    // regrouped.
    mine = regrouped_totals(totals, saved_world, comm_.rank());
  }
  mine.skipped = meta.int_or(key::kEpochSkippedSteps, 0);  // older files: none recorded
  state_.copy_from_host();

  ResumePoint point;
  point.epochs_done = meta_int(meta, key::kEpoch, path);
  point.step_in_epoch = resumed_step_in_epoch(meta, path, identity_.steps_per_epoch);
  point.global_step = resumed_global_step(meta, path, identity_.steps_per_epoch);
  point.checkpoint_step = meta_int(meta, key::kStep, path);
  point.consecutive_skips = meta.int_or(key::kConsecutiveSkippedSteps, 0);  // older files: none
  if (point.global_step != point.checkpoint_step)
    log::info(
        "note: this run takes {} steps per epoch; the checkpoint's {} steps count as {} "
        "for the learning-rate schedule",
        identity_.steps_per_epoch, point.checkpoint_step, point.global_step);
  return point;
}

}  // namespace dp
