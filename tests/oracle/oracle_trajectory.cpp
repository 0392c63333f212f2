// oracle_trajectory: a whole `dptrain train` run (train() in process, one rank, CPU) laid out
// for torch_trajectory.py and torch_trajectory_airbench.py to replay in PyTorch step by step.
// From INPUT.h5 (written by the Python side) it packs the data, trains, and writes
// WORKDIR/trajectory.h5 with what the replay needs and what it is compared against:
//   input : attribute args: the run's `dptrain train` options (e.g. --config FILE and
//           overrides); this tool adds --data (the packed copy), --output-dir WORKDIR,
//           --run-name run, --overwrite, --device cpu and --log-every 1000;
//           /train/images, /test/images u8 {N,H,W,C}; /train/labels, /test/labels u8 {N}.
//   output: attributes mean, std (the packed file's normalisation);
//           /initial/<name>: the run's initial parameters and buffers (make_model with the
//           same seed, then --whiten-init as train() applies it);
//           /plan/indices {S,B}, /plan/epoch {S} (1-based), /plan/crop {S,B,2}, /plan/flip
//           {S,B}: each step's samples and augmentation draws, from the sampler's and the
//           augmentation's own functions: the crop window's offset into the image padded by
//           the /plan attribute padding (zeros, or reflected where attribute reflect is 1),
//           and the flip as applied (the mirror after the crop; --flip alternating included);
//           /groups: each step's optimizer groups (group_recorder.h);
//           /final/<name>: the checkpoint's parameters and buffers after the run;
//           /holdout/views {V,M,K}: the final model in eval mode on the test split under each
//           evaluation view of --tta (tta_views: level 0 is the plain image), attributes
//           weights {V}, shift {V} (diagonal, pixels), flip {V}, reflect {V}.
// The run directory (metrics.h5 with every step's loss and lr, and /final: the run's own
// evaluation) is WORKDIR/run. Every step must be a whole batch (drop the last partial one, or
// a training set that the batch divides).
// A test tool, not part of the application.
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "comm/mpi_session.h"
#include "core/error.h"
#include "data/augment.h"
#include "data/distributed_sampler.h"
#include "data/packer.h"
#include "group_recorder.h"
#include "io/hdf5.h"
#include "nn/model.h"
#include "train/augmentation.h"
#include "train/backend_choice.h"
#include "train/cpu_backend_setup.h"
#include "train/model_state.h"
#include "train/preemption_signal.h"
#include "train/run_setup.h"
#include "train/train_data.h"
#include "train/trainer.h"

using namespace dp;

namespace {

std::vector<hsize_t> dims_of(const Shape& s) { return std::vector<hsize_t>(s.begin(), s.end()); }

data::RawSplit read_split(const h5::File& in, const std::string& split) {
  data::RawSplit out;
  in.group(split).dataset("images").read(out.images);
  in.group(split).dataset("labels").read(out.labels);
  out.count = static_cast<int64_t>(out.labels.size());
  return out;
}

// The packed file the run reads; returns its normalisation.
data::AugmentConfig pack(const h5::File& in, const std::string& path) {
  data::RawDataset raw;
  raw.name = "oracle";
  const auto dims = in.group("train").dataset("images").dims();
  raw.height = int64_t(dims[1]), raw.width = int64_t(dims[2]), raw.channels = int64_t(dims[3]);
  for (int c = 0; c < 10; ++c) raw.class_names.push_back("class" + std::to_string(c));
  raw.train = read_split(in, "train");
  raw.test = read_split(in, "test");
  raw.sources = {{"torch_trajectory.py", "-"}};
  data::AugmentConfig augment;
  data::channel_mean_std(raw.train, raw.channels, augment.mean, augment.std);
  data::write_packed(raw, path, augment.mean, augment.std);
  return augment;
}

// The input's options, then this tool's: the packed data, the run directory, the CPU.
TrainConfig config_from(const h5::File& in, const std::string& data, const std::string& out) {
  std::vector<std::string> args = in.strings_attribute("args");
  args.insert(args.end(), {"--data", data, "--output-dir", out, "--run-name", "run", "--overwrite",
                           "true", "--device", "cpu", "--log-every", "1000"});
  TrainConfig c;
  if (!parse_train_config(args, c)) throw UsageError("oracle_trajectory: --help in args");
  return c;
}

void write_state(const h5::Group& group, nn::Model& model) {
  std::vector<float> host;
  for (const auto& e : model.store().entries()) {
    host.resize(e.numel());
    model.store().read(e.name, host.data(), host.size());
    group.write<float>(e.name, dims_of(e.shape), host.data());
  }
}

// The model train() starts from: make_model with the run's seed, then --whiten-init.
void write_initial(h5::File& out, const TrainConfig& config, const data::HDF5Dataset& train_set) {
  auto backend = make_cpu_backend();
  auto initial = nn::make_model(model_spec(config, train_set), *backend);
  apply_whiten_init(config, *initial, train_set);
  write_state(out.create_group("initial"), *initial);
}

// Every step's samples and draws: the sampler's order (one rank: all of it) cut to the
// epoch's steps, and the augmentation's per-sample draw, both pure functions of (seed, epoch,
// index); epochs are 0-based here, as the loader's.
void write_plan(h5::File& out, const TrainConfig& c, const data::HDF5Dataset& train_set) {
  const data::AugmentConfig augment = training_augmentation(c, train_set);
  const int64_t per_epoch = TrainData(train_set, c, 1, 0, false).steps_per_epoch();
  const int64_t steps = steps_to_run(c, per_epoch), b = c.batch_size;
  const data::DistributedSampler sampler(train_set.size(), 1, 0, c.seed);
  std::vector<int64_t> indices, epochs;
  std::vector<int32_t> crops;
  std::vector<uint8_t> flips;
  for (int64_t epoch = 0; epoch * per_epoch < steps; ++epoch) {
    const std::vector<int64_t> order = sampler.indices_for_epoch(epoch);
    const int64_t in_epoch = std::min(per_epoch, steps - epoch * per_epoch);
    if (in_epoch * b > int64_t(order.size()))
      throw UsageError(
          fmt::format("oracle_trajectory: {} samples make a partial batch of {}; "
                      "use --drop-last or a multiple of it",
                      order.size(), b));
    for (int64_t k = 0; k < in_epoch * b; ++k) {
      const data::SampleDraw draw = data::draw_for_sample(augment, epoch, order[k]);
      indices.push_back(order[k]);
      crops.insert(crops.end(), {draw.crop_y, draw.crop_x});
      flips.push_back(draw.flip ? 1 : 0);
    }
    epochs.insert(epochs.end(), in_epoch, epoch + 1);
  }
  const hsize_t s = steps;
  out.write<int64_t>("plan/indices", {s, hsize_t(b)}, indices.data());
  out.write<int64_t>("plan/epoch", {s}, epochs.data());
  out.write<int32_t>("plan/crop", {s, hsize_t(b), 2}, crops.data());
  out.write<uint8_t>("plan/flip", {s, hsize_t(b)}, flips.data());
  h5::Group plan = out.group("plan");
  plan.set_attribute("padding", int64_t(augment.crop_padding));
  plan.set_attribute("reflect", int64_t(augment.reflect ? 1 : 0));
}

// The trained model (the checkpoint) in eval mode on the test split under each of --tta's
// evaluation views, built as the run's evaluation builds them.
void write_holdout(h5::File& out, const TrainConfig& config, const data::HDF5Dataset& test_set,
                   const std::string& checkpoint) {
  // the views computed as the run computes them
  // (make_cpu_backend refuses bf16 where this CPU lacks it, so bf16 asked is bf16 run)
  const bool bf16 = config.precision == Precision::bf16;
  auto backend = make_cpu_backend(0, cpu_blocked_activations(config.arch, bf16),
                                  cpu_bf16_mode(config.arch, bf16));
  auto model = nn::make_model(model_spec(config, test_set), *backend);
  ModelState(*model, nullptr).load(checkpoint);
  write_state(out.create_group("final"), *model);
  const int64_t n = test_set.size(), h = test_set.height(), w = test_set.width(),
                c = test_set.channels();
  std::vector<int64_t> all(n);
  for (int64_t i = 0; i < n; ++i) all[i] = i;
  std::vector<uint8_t> raw(n * h * w * c);
  test_set.read_images(all, raw.data());
  const std::vector<EvalView> views = tta_views(config.tta);
  std::vector<float> logits;
  std::vector<double> weights, shifts, flips, reflects;
  Tensor images = Tensor::empty({n, h, w, c});
  for (const EvalView& view : views) {
    data::Augmenter augmenter(evaluation_augmentation(view, config.normalize, test_set), h, w, c);
    augmenter.apply_batch(raw.data(), all, 0, images.data());
    const Tensor& out_logits = model->forward(images, /*train=*/false);
    const size_t at = logits.size();
    logits.resize(at + out_logits.numel());
    backend->copy_to_host(out_logits, logits.data() + at);
    DP_CHECK(view.shift_y == view.shift_x, "oracle_trajectory: a view shifted off the diagonal");
    weights.push_back(view.weight);
    shifts.push_back(view.shift_y);
    flips.push_back(view.flip ? 1 : 0);
    reflects.push_back(view.reflect ? 1 : 0);
  }
  const hsize_t v = views.size(), k = logits.size() / (v * n);
  out.write<float>("holdout/views", {v, hsize_t(n), k}, logits.data());
  h5::Group holdout = out.group("holdout");
  holdout.set_attribute("weights", weights);
  holdout.set_attribute("shift", shifts);
  holdout.set_attribute("flip", flips);
  holdout.set_attribute("reflect", reflects);
}

int run(const std::string& in_path, const std::string& workdir, const MpiSession& mpi) {
  std::filesystem::create_directories(workdir);
  h5::File in(in_path, h5::File::Mode::read);
  const std::string data = workdir + "/data.h5";
  data::AugmentConfig norm = pack(in, data);
  const TrainConfig config = config_from(in, data, workdir);
  h5::File out(workdir + "/trajectory.h5", h5::File::Mode::create_truncate);
  out.set_attribute("mean", norm.mean);
  out.set_attribute("std", norm.std);
  {
    const data::HDF5Dataset train_set(data, "train");
    write_initial(out, config, train_set);
    write_plan(out, config, train_set);
  }
  GroupLog groups;
  RecipeAdditions additions;
  additions.callbacks.push_back(std::make_unique<GroupRecorder>(groups));
  static PreemptionSignal signal;
  if (const int code = train(config, mpi, signal, std::move(additions)); code != 0) return code;
  groups.write(out.create_group("groups"));
  write_holdout(out, config, data::HDF5Dataset(data, "test"), workdir + "/run/checkpoint.h5");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  MpiSession mpi(&argc, &argv);
  if (argc != 3) {
    std::fprintf(stderr, "usage: oracle_trajectory INPUT.h5 WORKDIR\n");
    return 2;
  }
  try {
    return run(argv[1], argv[2], mpi);
  } catch (const dp::Error& e) {
    std::fprintf(stderr, "oracle_trajectory: %s\n", e.what());
    return static_cast<int>(e.code());
  }
}
