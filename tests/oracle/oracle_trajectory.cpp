// oracle_trajectory: a whole `dptrain train` run (train() in process, one rank, CPU) laid out
// for torch_trajectory.py to replay in PyTorch step by step. From INPUT.h5 (written by the
// Python side) it packs the data, trains, and writes OUTPUT.h5 with what the replay needs and
// what it is compared against:
//   input : attributes arch, seed, epochs, batch_size, lr, momentum, nesterov,
//           weight_decay, label_smoothing, crop_padding, flip, gamma, milestones;
//           /train/images, /test/images u8 {N,H,W,C}; /train/labels, /test/labels u8 {N}.
//   output: attributes mean, std (the packed file's normalisation);
//           /initial/<name>: the run's initial parameters and buffers (make_model, same seed);
//           /plan/indices {S,B}, /plan/crop {S,B,2}, /plan/flip {S,B}: each step's samples and
//           augmentation draws, from the sampler's and the augmentation's own functions;
//           /final/<name>: the checkpoint's parameters and buffers after the run;
//           /holdout/logits {M,K}: the final model in eval mode on the unaugmented test split.
// The run directory (metrics.h5 with every step's loss and lr) is WORKDIR/run. Models take
// their architecture's default shortcut (option A for the CIFAR ResNets).
// A test tool, not part of the application.
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "comm/mpi_session.h"
#include "data/augment.h"
#include "data/distributed_sampler.h"
#include "data/packer.h"
#include "io/hdf5.h"
#include "nn/model.h"
#include "train/model_state.h"
#include "train/preemption_signal.h"
#include "train/run_setup.h"
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

TrainConfig config_from(const h5::File& in, const std::string& data, const std::string& out) {
  TrainConfig c;
  c.data = data;
  c.arch = in.string_attribute("arch");
  c.seed = static_cast<uint64_t>(in.int_attribute("seed"));
  c.epochs = static_cast<int>(in.int_attribute("epochs"));
  c.batch_size = static_cast<int>(in.int_attribute("batch_size"));
  c.lr = static_cast<float>(in.double_attribute("lr"));
  c.momentum = static_cast<float>(in.double_attribute("momentum"));
  c.nesterov = in.int_attribute("nesterov") != 0;
  c.weight_decay = static_cast<float>(in.double_attribute("weight_decay"));
  c.label_smoothing = static_cast<float>(in.double_attribute("label_smoothing"));
  c.crop_padding = static_cast<int>(in.int_attribute("crop_padding"));
  c.flip = in.int_attribute("flip") != 0;
  c.lr_schedule = "step";
  c.lr_milestones = in.doubles_attribute("milestones");
  c.lr_gamma = static_cast<float>(in.double_attribute("gamma"));
  c.device = "cpu";
  c.output_dir = out;
  c.run_name = "run";
  c.overwrite = true;
  c.log_every = 1000;
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

// Every step's samples and draws: the sampler's permutation (one rank: all of it, in order)
// and the augmentation's per-sample draw, both pure functions of (seed, epoch, index).
void write_plan(h5::File& out, const TrainConfig& c, data::AugmentConfig augment, int64_t n) {
  augment.random_crop = c.crop_padding > 0;
  augment.crop_padding = c.crop_padding;
  augment.horizontal_flip = c.flip;
  augment.seed = c.seed;
  std::vector<int64_t> indices;
  std::vector<int32_t> crops;
  std::vector<uint8_t> flips;
  for (int64_t epoch = 0; epoch < c.epochs; ++epoch)
    for (int64_t i : data::epoch_permutation(n, c.seed, epoch)) {
      const data::SampleDraw draw = data::draw_for_sample(augment, epoch, i);
      indices.push_back(i);
      crops.insert(crops.end(), {draw.crop_y, draw.crop_x});
      flips.push_back(draw.flip ? 1 : 0);
    }
  const hsize_t steps = indices.size() / c.batch_size, b = c.batch_size;
  out.write<int64_t>("plan/indices", {steps, b}, indices.data());
  out.write<int32_t>("plan/crop", {steps, b, 2}, crops.data());
  out.write<uint8_t>("plan/flip", {steps, b}, flips.data());
}

// The trained model (the checkpoint) in eval mode on the test split, normalised only.
void write_holdout(h5::File& out, const nn::ModelSpec& spec, const data::AugmentConfig& norm,
                   const h5::File& in, const std::string& checkpoint) {
  auto backend = make_cpu_backend();
  auto model = nn::make_model(spec, *backend);
  ModelState(*model, nullptr).load(checkpoint);
  write_state(out.create_group("final"), *model);
  const data::RawSplit test = read_split(in, "test");
  const auto dims = in.group("test").dataset("images").dims();
  data::Augmenter identity(norm, int64_t(dims[1]), int64_t(dims[2]), int64_t(dims[3]));
  std::vector<int64_t> all(test.count);
  for (int64_t i = 0; i < test.count; ++i) all[i] = i;
  Tensor images = Tensor::empty({test.count, int64_t(dims[1]), int64_t(dims[2]), int64_t(dims[3])});
  identity.apply_batch(test.images.data(), all, 0, images.data());
  const Tensor& logits = model->forward(images, /*train=*/false);
  std::vector<float> host(logits.numel());
  backend->copy_to_host(logits, host.data());
  out.write<float>("holdout/logits", dims_of(logits.shape()), host.data());
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
  // The spec train() builds its model from, so these are the run's initial weights.
  const nn::ModelSpec spec = model_spec(config, data::HDF5Dataset(data, "train"));
  {
    auto backend = make_cpu_backend();
    auto initial = nn::make_model(spec, *backend);
    write_state(out.create_group("initial"), *initial);
  }
  write_plan(out, config, norm, static_cast<int64_t>(in.group("train").dataset("labels").dims()[0]));
  static PreemptionSignal signal;
  if (const int code = train(config, mpi, signal); code != 0) return code;
  write_holdout(out, spec, norm, in, workdir + "/run/checkpoint.h5");
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
