#include "train/run_setup.h"

#include <fmt/ranges.h>

#include <algorithm>
#include <cstdlib>
#include <numeric>
#include <optional>
#include <set>

#include "comm/agreed_verdict.h"
#include "comm/mpi_strings.h"
#include "core/log.h"
#include "core/timer.h"
#include "data/augment.h"
#include "nn/whitening.h"
#include "train/augmentation.h"
#include "train/slurm_requeue.h"

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

// An option's value as a log line shows it: quoted where empty or holding a space.
std::string quoted_if_spaced(const std::string& value) {
  return value.empty() || value.find(' ') != std::string::npos ? "'" + value + "'" : value;
}

}  // namespace

nn::ModelSpec model_spec(const TrainConfig& config, const data::HDF5Dataset& train_set) {
  nn::ModelSpec spec;
  spec.arch = config.arch;
  spec.shortcut = config.shortcut;
  spec.num_classes = train_set.num_classes();
  spec.in_channels = train_set.channels();
  spec.zero_init_residual = config.zero_init_residual;
  spec.seed = config.seed;
  const std::string problem =
      nn::input_size_problem(config.arch, train_set.height(), train_set.width());
  if (!problem.empty())
    throw UsageError(fmt::format("option --arch: {} ({})", problem, config.data));
  return spec;
}

void apply_whiten_init(const TrainConfig& config, nn::Model& model,
                       const data::HDF5Dataset& train_set) {
  if (config.whiten_init == 0) return;
  const int64_t n = std::min(config.whiten_init, train_set.size());
  const int64_t h = train_set.height(), w = train_set.width(), c = train_set.channels();
  std::vector<int64_t> first(n);
  std::iota(first.begin(), first.end(), 0);
  std::vector<uint8_t> raw(n * h * w * c);
  train_set.read_images(first, raw.data());
  // As evaluation sees an image: normalised, not augmented.
  const data::AugmentConfig plain =
      evaluation_augmentation(EvalView{}, config.normalize, train_set);
  std::vector<float> images(raw.size());
  data::Augmenter(plain, h, w, c).apply_batch(raw.data(), first, 0, images.data());
  const std::string name = nn::apply_whitening(model, images.data(), n, h, w, c);
  log::info("--whiten-init: {} whitens the patches of the first {} training images{}", name, n,
            n < config.whiten_init
                ? fmt::format(" (all of them: --whiten-init asks for {})", config.whiten_init)
                : "");
}

void broadcast_state(nn::Model& model, Communicator& comm) {
  if (comm.size() == 1) return;
  comm.broadcast(model.params().data(), model.params().numel(), 0);
  comm.broadcast(model.buffers().data(), model.buffers().numel(), 0);
}

std::unique_ptr<GradientReducer> make_gradient_reducer(nn::Model& model, Communicator& comm,
                                                       double bucket_mb) {
  // Under one byte (any positive --bucket-mb is valid): one tensor per bucket, as DDP's
  // bucket_cap_mb gives it.
  const int64_t bytes = std::max<int64_t>(1, static_cast<int64_t>(bucket_mb * 1024 * 1024));
  return std::make_unique<GradientReducer>(model.grads().data(), gradient_slices(model.store()),
                                           comm, bytes);
}

optim::Optimizer make_optimizer(const TrainConfig& config, nn::Model& model,
                                std::vector<ParamGroupRule> groups) {
  for (ParamGroupRule& rule : configured_param_groups(config)) groups.push_back(std::move(rule));
  groups.push_back(default_param_group(config));
  std::vector<optim::ParamGroup> assigned = assign_param_groups(model.store(), groups);
  for (size_t i = 0; i < assigned.size(); ++i)
    if (assigned[i].name.starts_with(kFreezeGroupPrefix) && assigned[i].ranges.empty())
      throw UsageError(fmt::format("option --freeze: '{}' {} of {}",
                                   assigned[i].name.substr(kFreezeGroupPrefix.size()),
                                   why_no_parameters(model.store(), groups, i), config.arch));
  return optim::Optimizer(model.store().backend(), model.params(), model.grads(),
                          model.store().make_decay_mask(config.no_decay_bn_bias),
                          std::move(assigned), config.lr);
}

TrainStepOptions train_step_options(const TrainConfig& config, const TrainData& data, int world) {
  TrainStepOptions options;
  options.label_smoothing = config.label_smoothing;
  options.sum_over_ranks = config.loss_reduction == LossReduction::sum ? world : 0;
  options.cuda_graphs = config.cuda_graphs && !sync_bn_active(config, world);
  options.local_batch = data.local_batch();
  options.broadcast_buffers = config.broadcast_buffers;
  options.backend_augment = data.backend_augment();
  return options;
}

EvalOptions eval_options(const TrainConfig& config, const TrainData& data,
                         const data::HDF5Dataset& test_set) {
  EvalOptions options;
  options.batch_size = std::max<int64_t>(data.local_batch(), 256);
  options.normalize = config.normalize;
  options.prefetch = config.prefetch;
  options.augment_on_backend = data.backend_augment().has_value();
  options.views = tta_views(config.tta);
  for (const EvalView& view : options.views)  // built for the constructor's checks only
    data::Augmenter(evaluation_augmentation(view, options.normalize, test_set), test_set.height(),
                    test_set.width(), test_set.channels());
  return options;
}

CheckpointPolicyOptions checkpoint_policy_options(const TrainConfig& config) {
  return {config.checkpoint_every, config.checkpoint_every_steps,
          double(config.checkpoint_every_minutes)};
}

data::HDF5Dataset open_split_on_every_rank(const std::string& path, const std::string& split) {
  std::optional<data::HDF5Dataset> set;
  run_agreeing([&] { set.emplace(path, split); });
  return std::move(*set);
}

RunIdentity run_identity(const TrainConfig& config, const data::HDF5Dataset& train_set,
                         int64_t steps_per_epoch) {
  RunIdentity identity;
  identity.arch = config.arch;
  identity.shortcut = nn::shortcut_name(nn::resolve_shortcut(config.arch, config.shortcut));
  identity.dataset = train_set.name();
  identity.num_classes = train_set.num_classes();
  identity.in_channels = train_set.channels();
  identity.seed = config.seed;
  identity.normalize = config.normalize;
  identity.batch_size = config.batch_size;
  identity.steps_per_epoch = steps_per_epoch;
  identity.epochs = config.epochs;
  identity.steps_to_run = steps_to_run(config, steps_per_epoch);
  identity.stop_after_steps = config.stop_after_steps;
  identity.sync_bn = config.sync_bn;
  identity.lookahead = config.lookahead;
  identity.data = trained_data(train_set);
  return identity;
}

std::string run_name(const TrainConfig& config, const data::HDF5Dataset& train_set,
                     const RequeuePlan& requeue) {
  if (!config.run_name.empty()) return config.run_name;
  // A run that continues itself in a Slurm job a stop requeues is named for the job, which the
  // requeued job keeps. Another job (an interactive allocation's next one) has another id.
  const bool continues = config.resume.kind == ResumeRequest::Kind::automatic;
  const std::string job = continues && requeue.requeues() ? requeue.job : std::string();
  if (continues && job.empty())
    log::info(
        "note: --resume auto without --run-name: this run is named for the time{}, so there is "
        "no earlier run of that name to continue (give --run-name to continue one)",
        requeue.job.empty() ? ""
                            : fmt::format(" (Slurm job {} is not requeued after a stop: {})",
                                          requeue.job, requeue.refusal));
  if (!job.empty())
    log::info(
        "note: no --run-name: the run is named for Slurm job {}, so that its requeued job "
        "continues it; another run in this job would continue it too: give each its own "
        "--run-name",
        job);
  // Rank 0's: the ranks' clocks may straddle a second.
  return broadcast_strings({default_run_name(config.arch, train_set.name(), job)})[0];
}

RunDirectory::Existing existing_run_policy(const TrainConfig& config) {
  return config.resume.kind != ResumeRequest::Kind::none ? RunDirectory::Existing::resume
         : config.overwrite                              ? RunDirectory::Existing::overwrite
                                                         : RunDirectory::Existing::refuse;
}

std::map<std::string, std::string> resume_record(const std::string& checkpoint,
                                                 const ResumePoint& point, int world) {
  std::map<std::string, std::string> info = {{"checkpoint", checkpoint},
                                             {"epochs_done", std::to_string(point.epochs_done)},
                                             {"step", std::to_string(point.checkpoint_step)},
                                             {"step_in_epoch", std::to_string(point.step_in_epoch)},
                                             {"world_size", std::to_string(world)},
                                             {"time", utc_time("%Y-%m-%dT%H:%M:%SZ")}};
  if (const std::string job = slurm_job_id(); !job.empty()) info["slurm_job_id"] = job;
  if (const char* restarts = std::getenv("SLURM_RESTART_COUNT"))
    info["slurm_restart_count"] = restarts;
  return info;
}

namespace {
// The entries recorded_options adds that describe the job rather than the run; changed_options
// leaves them out, with the options that say how a job starts.
constexpr const char* kWorldSizeEntry = "world-size";
constexpr const char* kBackendEntry = "backend";
constexpr const char* kGradientCommEntry = "gradient-comm";
}  // namespace

std::map<std::string, std::string> recorded_options(const TrainConfig& config,
                                                    const std::string& run_name, int world,
                                                    const std::string& backend,
                                                    const std::string& gradient_comm) {
  auto recorded = config.effective;
  recorded["run-name"] = run_name;
  recorded[kWorldSizeEntry] = std::to_string(world);
  recorded[kBackendEntry] = backend;
  recorded[kGradientCommEntry] = gradient_comm;
  return recorded;
}

std::string changed_options(const std::map<std::string, std::string>& previous,
                            const std::map<std::string, std::string>& now) {
  static const std::set<std::string> left_out = {kWorldSizeEntry, kBackendEntry, kGradientCommEntry,
                                                 "resume", "overwrite"};
  std::vector<std::string> changes;
  for (const auto& [name, value] : now) {
    if (left_out.count(name)) continue;
    const auto before = previous.find(name);
    if (before != previous.end() && before->second != value)
      changes.push_back(fmt::format("--{} {} -> {}", name, quoted_if_spaced(before->second),
                                    quoted_if_spaced(value)));
  }
  return fmt::format("{}", fmt::join(changes, ", "));
}

std::string other_run_problem(const std::map<std::string, std::string>& previous,
                              const std::map<std::string, std::string>& now) {
  for (const char* name : {"arch", "seed", "batch-size", "normalize"}) {
    const auto before = previous.find(name), after = now.find(name);
    if (before != previous.end() && after != now.end() && before->second != after->second)
      return fmt::format("--{} {}, where this run's is {}", name, before->second, after->second);
  }
  return "";
}

}  // namespace dp
