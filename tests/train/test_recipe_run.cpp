// The recipe's extension points at work in whole runs (single rank, MPI started by the test):
// - evaluation views: a mirrored or shifted view equals evaluating a dataset whose images were
//   mirrored or shifted beforehand, bit for bit, and two views average their logits;
// - a parameter group and step callbacks added through RecipeAdditions, with no change to the
//   epoch driver: the callbacks see every step in order with the schedule's rate, and a group
//   frozen from epoch 2 on keeps its epoch-1 values while the rest trains.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <numeric>
#include <optional>

#include "../io/temp_dir.h"
#include "comm/mpi_session.h"
#include "core/error.h"
#include "data/augment.h"
#include "data/packer.h"
#include "optim/lr_schedule.h"
#include "train/evaluator.h"
#include "train/model_state.h"
#include "train/preemption_signal.h"
#include "train/trainer.h"

namespace dp::test {
namespace {

const MpiSession* g_mpi = nullptr;
constexpr int64_t kSide = 8, kChannels = 3, kTest = 40, kTrain = 64;

std::vector<uint8_t> random_pixels(int64_t n, uint32_t seed) {
  std::mt19937 gen(seed);
  std::vector<uint8_t> v(n * kSide * kSide * kChannels);
  for (auto& x : v) x = static_cast<uint8_t>(gen() % 256);
  return v;
}

// A packed file whose test images are `test_pixels` and whose statistics are fixed, so two
// files differ only in their pixels.
void write_dataset(const std::string& path, const std::vector<uint8_t>& test_pixels) {
  data::RawDataset raw;
  raw.name = "views";
  raw.class_names = {"a", "b", "c", "d", "e"};
  raw.height = raw.width = kSide;
  raw.channels = kChannels;
  std::vector<uint8_t> labels(kTest), train_labels(kTrain);
  for (int64_t i = 0; i < kTest; ++i) labels[i] = static_cast<uint8_t>(i % 5);
  for (int64_t i = 0; i < kTrain; ++i) train_labels[i] = static_cast<uint8_t>((i * 3) % 5);
  raw.train = {kTrain, random_pixels(kTrain, 1), train_labels};
  raw.test = {kTest, test_pixels, labels};
  raw.sources = {{"generated", "-"}};
  data::write_packed(raw, path, {0.5, 0.4, 0.45}, {0.25, 0.3, 0.2});
}

// Each test image remapped: output pixel (y, x) is input pixel at(y, x), or 0 outside.
template <typename At>
std::vector<uint8_t> remapped(const std::vector<uint8_t>& pixels, At at) {
  std::vector<uint8_t> out(pixels.size(), 0);
  const int64_t image = kSide * kSide * kChannels;
  for (int64_t n = 0; n < kTest; ++n)
    for (int64_t y = 0; y < kSide; ++y)
      for (int64_t x = 0; x < kSide; ++x) {
        const auto [sy, sx] = at(y, x);
        if (sy < 0 || sy >= kSide || sx < 0 || sx >= kSide) continue;
        for (int64_t c = 0; c < kChannels; ++c)
          out[n * image + (y * kSide + x) * kChannels + c] =
              pixels[n * image + (sy * kSide + sx) * kChannels + c];
      }
  return out;
}

struct ViewsFixture {
  testing::TempDir dir;
  std::vector<uint8_t> pixels = random_pixels(kTest, 7);
  std::unique_ptr<Backend> backend = make_cpu_backend(1);
  std::unique_ptr<nn::Model> model;
  std::unique_ptr<Communicator> comm = make_mpi_communicator();
  ViewsFixture() {
    nn::ModelSpec spec;
    spec.arch = "resnet8";
    spec.num_classes = 5;
    spec.seed = 3;
    model = nn::make_model(spec, *backend);
  }
  EvaluationResult eval(const std::vector<uint8_t>& test_pixels, std::vector<EvalView> views) {
    const std::string path = dir.file("d" + std::to_string(files_++) + ".h5");
    write_dataset(path, test_pixels);
    data::HDF5Dataset test_set(path, "test");
    EvalOptions options;
    options.views = std::move(views);
    return evaluate(*model, test_set, options, *comm);
  }
  int files_ = 0;
};

// The model's logits on the test images `pixels`, normalised with the file's statistics and,
// with `draw`, shifted/mirrored by it: an evaluation pass done by hand.
std::vector<float> forward_logits(nn::Model& model, const data::HDF5Dataset& test_set,
                                  const std::vector<uint8_t>& pixels,
                                  std::optional<data::SampleDraw> draw) {
  std::vector<int64_t> all(kTest);
  std::iota(all.begin(), all.end(), 0);
  data::AugmentConfig augment;
  augment.mean = test_set.mean();
  augment.std = test_set.std();
  augment.crop_padding = 0;
  augment.fixed_draw = draw;
  data::Augmenter augmenter(augment, kSide, kSide, kChannels);
  Tensor images = Tensor::empty({kTest, kSide, kSide, kChannels});
  augmenter.apply_batch(pixels.data(), all, 0, images.data());
  const Tensor& out = model.forward(images, /*train=*/false);
  return {out.data(), out.data() + out.numel()};
}

// Mean cross-entropy and confusion matrix (label-major, 5 classes) over the test set of the
// class scores mean_of(n, k), computed in double.
template <typename MeanOf>
std::pair<double, std::vector<int64_t>> scored(const data::HDF5Dataset& test_set, MeanOf mean_of) {
  double loss = 0;
  std::vector<int64_t> confusion(25, 0);
  for (int64_t n = 0; n < kTest; ++n) {
    std::vector<double> mean(5);
    for (int k = 0; k < 5; ++k) mean[k] = mean_of(n, k);
    const double top = *std::max_element(mean.begin(), mean.end());
    double sum = 0;
    for (double m : mean) sum += std::exp(m - top);
    const int label = test_set.labels()[n];
    loss += top + std::log(sum) - mean[label];
    confusion[label * 5 + (std::max_element(mean.begin(), mean.end()) - mean.begin())] += 1;
  }
  return {loss / kTest, confusion};
}

TEST(EvaluationViews, MirrorViewEqualsTheMirroredDataset) {
  ViewsFixture f;
  const auto mirrored = remapped(f.pixels, [](int64_t y, int64_t x) {
    return std::pair<int64_t, int64_t>{y, kSide - 1 - x};
  });
  const EvaluationResult view = f.eval(f.pixels, {EvalView{0, 0, true}});
  const EvaluationResult data = f.eval(mirrored, {EvalView{}});
  EXPECT_EQ(view.loss, data.loss);
  EXPECT_EQ(view.confusion, data.confusion);
  EXPECT_NE(view.loss, f.eval(f.pixels, {EvalView{}}).loss) << "the view must change the input";
}

TEST(EvaluationViews, ShiftViewEqualsTheShiftedZeroPaddedDataset) {
  ViewsFixture f;
  const auto shifted = remapped(f.pixels, [](int64_t y, int64_t x) {
    return std::pair<int64_t, int64_t>{y - 2, x + 1};
  });
  const EvaluationResult view = f.eval(f.pixels, {EvalView{-2, 1, false}});
  const EvaluationResult data = f.eval(shifted, {EvalView{}});
  EXPECT_EQ(view.loss, data.loss);
  EXPECT_EQ(view.confusion, data.confusion);
}

TEST(EvaluationViews, ReflectShiftViewEqualsTheReflectPaddedShiftedDataset) {
  ViewsFixture f;
  auto reflect = [](int64_t i) { return i < 0 ? -i : (i >= kSide ? 2 * (kSide - 1) - i : i); };
  for (int shift : {-1, 1}) {
    const auto shifted = remapped(f.pixels, [&](int64_t y, int64_t x) {
      return std::pair<int64_t, int64_t>{reflect(y + shift), reflect(kSide - 1 - x + shift)};
    });
    const EvaluationResult view = f.eval(f.pixels, {EvalView{shift, shift, true, true}});
    const EvaluationResult data = f.eval(shifted, {EvalView{}});
    EXPECT_EQ(view.loss, data.loss) << shift;
    EXPECT_EQ(view.confusion, data.confusion) << shift;
  }
}

// Level 2 of --tta: half the image-and-mirror mean plus half the mean of the same on the two
// diagonal reflect shifts, computed here from pre-transformed images' logits.
TEST(EvaluationViews, TtaLevelTwoIsTheRecipesWeightedMeanOfSixPasses) {
  ViewsFixture f;
  const EvaluationResult tta = f.eval(f.pixels, tta_views(2));
  EXPECT_EQ(tta_views(0).size(), 1u);
  EXPECT_EQ(tta_views(1).size(), 2u);
  EXPECT_THROW(tta_views(3), UsageError);
  data::HDF5Dataset test_set(f.dir.file("d0.h5"), "test");
  auto reflect = [](int64_t i) { return i < 0 ? -i : (i >= kSide ? 2 * (kSide - 1) - i : i); };
  std::vector<std::vector<float>> logits;  // image, mirror, (-1,-1), mirrored, (+1,+1), mirrored
  for (int shift : {0, -1, 1})
    for (bool flip : {false, true}) {
      const auto pixels = remapped(f.pixels, [&](int64_t y, int64_t x) {
        return std::pair<int64_t, int64_t>{reflect(y + shift),
                                           reflect((flip ? kSide - 1 - x : x) + shift)};
      });
      logits.push_back(forward_logits(*f.model, test_set, pixels, std::nullopt));
    }
  const auto [loss, confusion] = scored(test_set, [&](int64_t n, int k) {
    auto l = [&](int v) { return double(logits[v][n * 5 + k]); };
    const double level1 = 0.5 * (l(0) + l(1));
    const double shifted = 0.5 * (0.5 * (l(2) + l(3)) + 0.5 * (l(4) + l(5)));
    return 0.5 * level1 + 0.5 * shifted;
  });
  EXPECT_NEAR(tta.loss, loss, 1e-5);
  EXPECT_EQ(tta.confusion, confusion);
}

// The mean of two views' logits, computed here from the model's own forward passes.
TEST(EvaluationViews, TwoViewsAverageTheirLogits) {
  ViewsFixture f;
  const EvaluationResult both = f.eval(f.pixels, {EvalView{}, EvalView{0, 0, true}});
  data::HDF5Dataset test_set(f.dir.file("d0.h5"), "test");
  std::vector<int64_t> all(kTest);
  std::iota(all.begin(), all.end(), 0);
  std::vector<uint8_t> raw(f.pixels.size());
  test_set.read_images(all, raw.data());
  std::vector<std::vector<float>> logits;
  for (bool flip : {false, true})
    logits.push_back(forward_logits(*f.model, test_set, raw, data::SampleDraw{0, 0, flip}));
  const auto [loss, confusion] = scored(test_set, [&](int64_t n, int k) {
    return 0.5 * (logits[0][n * 5 + k] + logits[1][n * 5 + k]);
  });
  EXPECT_NEAR(both.loss, loss, 1e-5);
  EXPECT_EQ(both.confusion, confusion);
}

// The evaluation reports its progress once per batch (the training job's watchdog beats on it,
// so a long evaluation is not taken for a stalled rank), the views of a batch together.
TEST(EvaluationProgress, OnBatchIsCalledOncePerBatch) {
  ViewsFixture f;
  const std::string path = f.dir.file("progress.h5");
  write_dataset(path, f.pixels);
  data::HDF5Dataset test_set(path, "test");
  EvalOptions options;
  options.batch_size = 16;
  options.views = {EvalView{}, EvalView{0, 0, true}};
  int calls = 0;
  options.on_batch = [&calls] { ++calls; };
  const EvaluationResult result = evaluate(*f.model, test_set, options, *f.comm);
  EXPECT_EQ(result.samples, kTest);
  EXPECT_EQ(calls, (kTest + 15) / 16);
}

// Records where each step stood and the rate the optimizer had.
struct Seen {
  std::vector<StepPosition> steps;
  std::vector<double> lrs;
};
class RecordSteps : public StepCallback {
 public:
  explicit RecordSteps(Seen& seen) : seen_(seen) {}
  void before_step(const StepPosition& at, optim::Optimizer& optimizer) override {
    seen_.steps.push_back(at);
    seen_.lrs.push_back(optimizer.lr());
  }

 private:
  Seen& seen_;
};

// Freezes a parameter group from an epoch on.
class FreezeGroupAt : public StepCallback {
 public:
  FreezeGroupAt(std::string group, int64_t epoch) : group_(std::move(group)), epoch_(epoch) {}
  void before_step(const StepPosition& at, optim::Optimizer& optimizer) override {
    optimizer.group(group_).frozen = at.epoch >= epoch_;
  }

 private:
  std::string group_;
  int64_t epoch_;
};

std::vector<float> checkpoint_param(const std::string& path, const std::string& name) {
  auto backend = make_cpu_backend(1);
  nn::ModelSpec spec;
  spec.arch = "resnet8";
  spec.num_classes = 5;
  auto model = nn::make_model(spec, *backend);
  ModelState(*model, nullptr).load(path);
  const auto id = model->store().find(name);
  std::vector<float> v(model->store().entry(*id).numel());
  model->store().read(name, v.data(), v.size());
  return v;
}

// A quiet one-thread CPU run of resnet8, 2 epochs, on a packed file written in `dir`; its
// output goes to dir/run_name.
TrainConfig small_run(const testing::TempDir& dir, const std::string& run_name) {
  write_dataset(dir.file("data.h5"), random_pixels(kTest, 9));
  TrainConfig config;
  config.data = dir.file("data.h5");
  config.arch = "resnet8";
  config.epochs = 2;
  config.device = DeviceRequest::cpu;
  config.threads = 1;
  config.output_dir = dir.path().string();
  config.run_name = run_name;
  config.log_every = 100;
  return config;
}

TEST(TrainRecipe, AnAddedGroupAndCallbacksRunWithoutChangingTheDriver) {
  testing::TempDir dir;
  TrainConfig config = small_run(dir, "recipe");
  config.batch_size = 16;
  config.lr_schedule = optim::LrScheduleKind::cosine;
  config.keep_checkpoints = 2;
  RecipeAdditions additions;
  ParamGroupRule bn;
  bn.group.name = "bn";
  bn.group.lr_factor = 4;
  bn.takes = [](const nn::StateEntry& e) {
    return e.param_role == nn::ParamRole::bn_weight || e.param_role == nn::ParamRole::bn_bias;
  };
  additions.groups.push_back(bn);
  Seen seen;
  additions.callbacks.push_back(std::make_unique<RecordSteps>(seen));
  additions.callbacks.push_back(std::make_unique<FreezeGroupAt>("bn", 2));
  static PreemptionSignal signal;
  ASSERT_EQ(train(config, *g_mpi, signal, std::move(additions)), 0);

  const int64_t steps = kTrain / 16;
  ASSERT_EQ(seen.steps.size(), size_t(2 * steps));
  optim::LrScheduleSpec spec;
  spec.kind = dp::optim::LrScheduleKind::cosine;
  spec.base_lr = config.lr;
  spec.steps_per_epoch = steps;
  spec.epochs = 2;
  const auto schedule = optim::make_lr_schedule(spec);
  for (int64_t i = 0; i < 2 * steps; ++i) {
    EXPECT_EQ(seen.steps[i].global_step, i);
    EXPECT_EQ(seen.steps[i].epoch, 1 + i / steps);
    EXPECT_EQ(seen.steps[i].step_in_epoch, i % steps);
    EXPECT_EQ(seen.lrs[i], schedule->lr(i)) << "the LR schedule's callback runs first";
  }
  const std::string run = dir.file("recipe");
  const std::string epoch1 = run + "/checkpoint-e0001-s000004.h5";
  ASSERT_TRUE(std::filesystem::exists(epoch1));
  EXPECT_EQ(checkpoint_param(epoch1, "bn1.weight"), checkpoint_param(run + "/checkpoint.h5", "bn1.weight"))
      << "the bn group is frozen in epoch 2";
  EXPECT_NE(checkpoint_param(epoch1, "conv1.weight"),
            checkpoint_param(run + "/checkpoint.h5", "conv1.weight"))
      << "the default group trains on";
}

// The recipe's options together in one short run: fractional --epochs with --drop-last stops
// after ceil(1.5 x 5) = 8 steps (64 samples, batch 12: 5 full batches an epoch), the piecewise
// schedule over T = 8 reaches the optimizer, a frozen parameter stays at its initial value
// through Lookahead, and the run ends with a TTA-2 evaluation.
TEST(TrainRecipe, AirbenchOptionsTogetherStopAfterTheFractionalEpochsSteps) {
  testing::TempDir dir;
  TrainConfig config = small_run(dir, "airbench");
  config.epochs_fraction = 1.5;
  config.drop_last = true;
  config.batch_size = 12;
  config.lr = 0.01;
  config.momentum = 0.85f;
  config.nesterov = true;
  config.weight_decay = 5e-3;
  config.loss_reduction = LossReduction::sum;
  config.label_smoothing = 0.2f;
  config.lr_schedule = optim::LrScheduleKind::linear_warmup_decay;
  config.bn_bias_lr_factor = 64;
  config.freeze = {"conv1.weight", "fc.weight:1"};
  config.lookahead.every = 2;
  config.translate = 2;
  config.alternating_flip = true;
  config.tta = 2;
  config.eval_every = 0;
  RecipeAdditions additions;
  Seen seen;
  additions.callbacks.push_back(std::make_unique<RecordSteps>(seen));
  static PreemptionSignal signal;
  ASSERT_EQ(train(config, *g_mpi, signal, std::move(additions)), 0);
  ASSERT_EQ(seen.steps.size(), 8u);
  EXPECT_EQ(seen.steps[7].epoch, 2);
  EXPECT_EQ(seen.steps[7].step_in_epoch, 2);
  // int(0.23 * 8) = 1: 0.2 at step 0, the peak at step 1, then down to 0.07 at step 8.
  EXPECT_NEAR(seen.lrs[0], 0.002, 1e-9);
  EXPECT_NEAR(seen.lrs[1], 0.01, 1e-9);
  EXPECT_NEAR(seen.lrs[7], 0.01 * (1 - 0.93 * 6 / 7), 1e-9);
  auto backend = make_cpu_backend(1);
  nn::ModelSpec spec;
  spec.arch = "resnet8";
  spec.num_classes = 5;
  spec.seed = config.seed;
  auto initial = nn::make_model(spec, *backend);
  std::vector<float> conv1(initial->store().entry(*initial->store().find("conv1.weight")).numel());
  initial->store().read("conv1.weight", conv1.data(), conv1.size());
  const std::string run = dir.file("airbench");
  EXPECT_EQ(checkpoint_param(run + "/checkpoint.h5", "conv1.weight"), conv1);
  EXPECT_NE(checkpoint_param(run + "/checkpoint.h5", "layer1.0.conv1.weight").front(),
            [&] {
              std::vector<float> v(initial->store().entry(*initial->store().find(
                  "layer1.0.conv1.weight")).numel());
              initial->store().read("layer1.0.conv1.weight", v.data(), v.size());
              return v.front();
            }());
}

}  // namespace
}  // namespace dp::test

int main(int argc, char** argv) {
  dp::MpiSession mpi(&argc, &argv);
  dp::test::g_mpi = &mpi;
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
