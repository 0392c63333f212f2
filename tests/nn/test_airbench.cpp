// airbench94 in the zoo: the state a torch module of the issue's description has (names, order,
// shapes, which parameters train), the parameter and multiply-add counts the issue states
// (1.97 M, 118.1 M per 32x32 image), the identity (dirac) init, and a training pass that
// fills every trainable gradient and leaves the fixed BN scales at 0 gradient (in bf16 too, on
// NHWC and blocked activations alike); with the whitening layer frozen (the recipe after 3
// epochs), a backward that skips everything below block1 and still gives every other
// parameter the full backward's gradient, reported once.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "backend/cpu/cpu_backend.h"
#include "core/error.h"
#include "nn/conv2d.h"
#include "nn/model.h"
#include "test_util.h"  // tests/backend: random tensors, layouts

using namespace dp;
using namespace dp::nn;
using dp::test::in_nhwc_order;
using dp::test::random_tensor;

namespace {

struct Expected {
  std::string name;
  Shape shape;
  bool trainable;
};

// The torch module: whiten = Conv2d(3, 24, 2, bias=True); block<i> = {conv1, norm1, conv2,
// norm2} with BatchNorm2d(weight fixed); head = Linear(widths[2], 10, bias=False).
std::vector<Expected> expected_state(const std::vector<int64_t>& widths = {64, 256, 256}) {
  std::vector<Expected> e = {{"whiten.weight", {24, 3, 2, 2}, true}, {"whiten.bias", {24}, true}};
  int64_t in = 24;
  for (int b = 0; b < 3; ++b) {
    const std::string p = "block" + std::to_string(b + 1);
    const int64_t w = widths[b];
    e.push_back({p + ".conv1.weight", {w, in, 3, 3}, true});
    for (const char* norm : {".norm1", ".norm2"}) {
      if (std::string(norm) == ".norm2") e.push_back({p + ".conv2.weight", {w, w, 3, 3}, true});
      e.push_back({p + norm + ".weight", {w}, false});
      e.push_back({p + norm + ".bias", {w}, true});
      e.push_back({p + norm + ".running_mean", {w}, true});
      e.push_back({p + norm + ".running_var", {w}, true});
      e.push_back({p + norm + ".num_batches_tracked", {1}, true});
    }
    in = w;
  }
  e.push_back({"head.weight", {10, widths[2]}, true});
  return e;
}

// dL/dlogits of a fixed pattern after a training forward of `x`; the gradients on the host, and
// the logits into `logits` where given.
std::vector<float> training_gradients(Backend& backend, Model& model, const Tensor& x,
                                      std::vector<float>* logits = nullptr) {
  const Tensor& out = model.forward(x, true);
  EXPECT_EQ(out.shape(), (Shape{x.dim(0), 10}));
  if (logits) {
    logits->resize(out.numel());
    backend.copy_to_host(out, logits->data());
  }
  Tensor dlogits = backend.allocate(out.shape());
  std::vector<float> dl(dlogits.numel());
  for (size_t i = 0; i < dl.size(); ++i) dl[i] = 0.1f * std::sin(1.3f * i);
  backend.copy_from_host(dl.data(), dlogits);
  model.backward(dlogits);
  std::vector<float> g(model.grads().numel());
  backend.copy_to_host(model.grads(), g.data());
  return g;
}

// |a - b| / |b| over n values (|b| floored at 1e-30).
double relative_l2_error(const float* a, const float* b, int64_t n) {
  double diff = 0, norm = 0;
  for (int64_t i = 0; i < n; ++i) {
    diff += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
    norm += double(b[i]) * b[i];
  }
  return std::sqrt(diff / std::max(norm, 1e-30));
}

// n 32x32 RGB images of a fixed smooth pattern, on `backend`.
Tensor test_images(Backend& backend, int64_t n) {
  Tensor t = backend.allocate({n, 32, 32, 3});
  std::vector<float> px(t.numel());
  for (size_t i = 0; i < px.size(); ++i) px[i] = std::cos(0.37f * i) + 0.2f * std::sin(0.011f * i);
  backend.copy_from_host(px.data(), t);
  return t;
}

class Airbench94 : public ::testing::Test {
 protected:
  Airbench94() : Airbench94(make_cpu_backend(2)) {}
  explicit Airbench94(std::unique_ptr<Backend> b) : backend(std::move(b)) {}
  std::unique_ptr<Backend> backend;
  std::unique_ptr<Model> model = [this] {
    ModelSpec spec;
    spec.arch = "airbench94";
    spec.seed = 7;
    return make_model(spec, *backend);
  }();

  std::vector<float> named(const std::string& name) {
    auto id = model->store().find(name);
    EXPECT_TRUE(id.has_value()) << name;
    std::vector<float> h(model->store().entry(*id).numel());
    model->store().read(*id, h.data(), h.size());
    return h;
  }
  std::vector<float> gradients(const Tensor& x) { return training_gradients(*backend, *model, x); }
  // After a backward with the parameters `frozen` requiring no gradient: theirs read 0, every
  // other parameter's equals `full`'s bit for bit, and each was reported ready once (`ready`).
  void expect_frozen_read_zero(const std::vector<float>& full, const std::vector<float>& got,
                               const std::vector<ParameterStore::Id>& frozen,
                               const std::vector<int>& ready) {
    const ParameterStore& store = model->store();
    for (ParameterStore::Id id = 0; id < store.entries().size(); ++id) {
      const StateEntry& e = store.entry(id);
      if (e.kind != StateKind::parameter) continue;
      EXPECT_EQ(ready[id], 1) << e.name << ": reported ready once, skipped or not";
      const bool zero = std::find(frozen.begin(), frozen.end(), id) != frozen.end();
      for (int64_t i = 0; i < e.numel(); ++i)
        ASSERT_EQ(got[e.offset + i], zero ? 0.0f : full[e.offset + i]) << e.name << "[" << i << "]";
    }
  }
  // Every gradient `g` of a training pass is finite, a trainable parameter's nonzero, a fixed
  // BN scale's 0; the batch was counted and the running statistics moved.
  void expect_training_pass(const std::vector<float>& g) {
    for (const auto& e : model->store().entries()) {
      if (e.kind != StateKind::parameter) continue;
      double norm = 0;
      for (int64_t i = 0; i < e.numel(); ++i) {
        ASSERT_TRUE(std::isfinite(g[e.offset + i])) << e.name;
        norm += double(g[e.offset + i]) * g[e.offset + i];
      }
      if (e.trainable)
        EXPECT_GT(norm, 0.0) << e.name;
      else
        EXPECT_EQ(norm, 0.0) << e.name << ": a fixed scale reports no gradient";
    }
    EXPECT_EQ(named("block3.norm2.num_batches_tracked"), std::vector<float>{1.0f});
    // PyTorch momentum 0.4: running_var = 0.6 * 1 + 0.4 * (unbiased batch variance) != 1.
    EXPECT_NE(named("block1.norm1.running_var")[0], 1.0f);
  }
  Tensor images(int64_t n) { return test_images(*backend, n); }
};

}  // namespace

// The model's state against the torch module's at `widths`: names, order, shapes and which
// parameters train.
static void expect_torch_state(const Model& model, const std::vector<int64_t>& widths) {
  const auto expected = expected_state(widths);
  const auto& entries = model.store().entries();
  ASSERT_EQ(entries.size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(entries[i].name, expected[i].name) << i;
    EXPECT_EQ(entries[i].shape, expected[i].shape) << expected[i].name;
    if (entries[i].kind == StateKind::parameter) {
      EXPECT_EQ(entries[i].trainable, expected[i].trainable) << expected[i].name;
    }
  }
}

TEST_F(Airbench94, StateIsTheTorchModulesNamesOrderShapesAndTrainability) {
  expect_torch_state(*model, {64, 256, 256});
}

TEST_F(Airbench94, ParameterAndMultiplyAddCountsOfTheIssue) {
  // 24*12 + 24 + (64*24*9 + 64*64*9) + (256*64*9 + 256*256*9) + 2*256*256*9 + 2*(2*64 + 4*256)
  // + 256*10; of those, 1,152 are the fixed BN scales.
  EXPECT_EQ(model->store().parameter_count(), 1972792);
  EXPECT_NEAR(model->store().parameter_count() / 1e6, 1.97, 0.005);
  model->store().reset_macs();
  model->forward(images(2), false);
  const int64_t per_image = model->store().forward_macs() / 2;
  EXPECT_EQ(per_image, 118147360);  // 31x31 whiten, 31/15, 15/7, 7/3 convs and the head
  EXPECT_NEAR(per_image / 1e6, 118.1, 0.05);
}

// airbench95: the same network at the published 95% variant's widths, 128/384/384.
TEST(Airbench95, IsAirbench94AtWidths128And384) {
  auto backend = make_cpu_backend(1);
  ModelSpec spec;
  spec.arch = "airbench95";
  spec.seed = 7;
  auto model = make_model(spec, *backend);
  expect_torch_state(*model, {128, 384, 384});
  // 24*12 + 24 + (128*24*9 + 128*128*9) + (384*128*9 + 384*384*9) + 2*384*384*9
  // + 2*(2*128 + 4*384) + 384*10
  EXPECT_EQ(model->store().parameter_count(), 4606520);
  model->store().reset_macs();
  Tensor x = backend->allocate({2, 32, 32, 3});
  backend->fill(x, 0.5f);
  model->forward(x, false);
  EXPECT_EQ(model->store().forward_macs() / 2, 301560864);
}

TEST_F(Airbench94, InitIsPyTorchDefaultWithIdentityFilters) {
  for (const auto& e : model->store().entries()) {
    if (e.kind != StateKind::parameter) continue;
    const auto v = named(e.name);
    if (e.name.ends_with("norm1.weight") || e.name.ends_with("norm2.weight")) {
      for (float x : v) ASSERT_EQ(x, 1.0f) << e.name;
    } else if (e.name.ends_with(".bias")) {
      for (float x : v) ASSERT_EQ(x, 0.0f) << e.name;
    } else if (e.shape.size() == 4) {  // conv: dirac on filters < min(O, I), U(+-bound) above
      const int64_t o = e.shape[0], in = e.shape[1], k = e.shape[2];
      const double bound = 1.0 / std::sqrt(double(in * k * k));
      double sq = 0;
      int64_t n = 0;
      for (int64_t f = 0; f < o; ++f)
        for (int64_t c = 0; c < in; ++c)
          for (int64_t t = 0; t < k * k; ++t) {
            const float x = v[(f * in + c) * k * k + t];
            if (f < std::min(o, in)) {
              ASSERT_EQ(x, (c == f && t == (k / 2) * k + k / 2) ? 1.f : 0.f) << e.name << f;
            } else {
              ASSERT_LE(std::abs(x), bound) << e.name;
              sq += double(x) * x, ++n;
            }
          }
      if (n > 1000) {  // U(-b, b) has variance b^2 / 3
        EXPECT_NEAR(sq / n, bound * bound / 3, 0.1 * bound * bound / 3) << e.name;
      }
    } else {  // head: U(-1/16, 1/16)
      for (float x : v) ASSERT_LE(std::abs(x), 1.0f / 16) << e.name;
    }
  }
}

TEST_F(Airbench94, TrainingPassFillsTrainableGradientsAndUpdatesStatistics) {
  backend->fill(model->grads(), std::nanf(""));
  expect_training_pass(gradients(images(3)));
}

TEST_F(Airbench94, FrozenWhiteningSkipsItsBackwardAndLeavesTheOtherGradientsExact) {
  Tensor x = images(3);
  ParameterStore& store = model->store();
  store.reset_macs();
  const std::vector<float> full = gradients(x);
  // Per image: the whitening conv (24 x 3 x 2 x 2 at 31 x 31) and block1.conv1's data
  // gradient (64 x 24 x 3 x 3 at 31 x 31) are what the pruned backward leaves out.
  const int64_t whiten = 3 * 276768, block1_data = 3 * 13284864;
  const int64_t forward = store.forward_macs();
  EXPECT_EQ(store.backward_macs(), 2 * forward - whiten) << "all but the images' gradient";
  const ParameterStore::Id weight = *store.find("whiten.weight"), bias = *store.find("whiten.bias");
  store.set_requires_grad(weight, false);
  store.set_requires_grad(bias, false);
  std::vector<int> ready(store.entries().size(), 0);
  store.set_grad_ready_hook([&](ParameterStore::Id id) { ++ready[id]; });
  backend->fill(model->grads(), std::nanf(""));
  store.reset_macs();
  const std::vector<float> pruned = gradients(x);
  EXPECT_EQ(store.backward_macs(), 2 * forward - 2 * whiten - block1_data);
  expect_frozen_read_zero(full, pruned, {weight, bias}, ready);
  // The bias alone trains (the recipe's first 3 epochs): its gradient is the full one's.
  store.set_requires_grad(bias, true);
  store.reset_macs();
  const std::vector<float> bias_only = gradients(x);
  EXPECT_EQ(store.backward_macs(), 2 * forward - 2 * whiten) << "no whitening conv call";
  const StateEntry& b = store.entry(bias);
  for (int64_t i = 0; i < b.numel(); ++i)
    ASSERT_EQ(bias_only[b.offset + i], full[b.offset + i]) << "whiten.bias[" << i << "]";
  for (int64_t i = 0; i < store.entry(weight).numel(); ++i)
    ASSERT_EQ(bias_only[store.entry(weight).offset + i], 0.0f) << "whiten.weight stays 0";
}

TEST_F(Airbench94, FrozenParametersOfEveryLayerKindReadZeroAndChangeNoOtherGradient) {
  Tensor x = images(3);
  const std::vector<float> full = gradients(x);
  ParameterStore& store = model->store();
  // A conv whose input gradient is still needed, a BN shift and the linear head.
  const std::vector<ParameterStore::Id> frozen = {
      *store.find("block2.conv1.weight"), *store.find("block2.norm1.bias"),
      *store.find("head.weight")};
  for (ParameterStore::Id id : frozen) store.set_requires_grad(id, false);
  std::vector<int> ready(store.entries().size(), 0);
  store.set_grad_ready_hook([&](ParameterStore::Id id) { ++ready[id]; });
  backend->fill(model->grads(), std::nanf(""));
  expect_frozen_read_zero(full, gradients(x), frozen, ready);
}

TEST_F(Airbench94, FixedParametersCannotRequireAGradient) {
  EXPECT_THROW(model->store().set_requires_grad(*model->store().find("block1.norm1.weight"), true),
               Error);
  EXPECT_FALSE(model->store().requires_grad(*model->store().find("block1.norm1.weight")));
  EXPECT_TRUE(model->store().requires_grad(*model->store().find("block1.norm1.bias")));
}

TEST_F(Airbench94, RefusesInputsThatDoNotPoolToOnePixel) {
  Tensor x = backend->allocate({1, 64, 64, 3});
  backend->fill(x, 0.5f);
  EXPECT_THROW(model->forward(x, false), Error);
}

// The fixture on a CPU backend with bf16 activations (where the CPU has bf16 arithmetic), NHWC
// and blocked (nChw16c: the default on CPUs without AMX).
class Airbench94Bf16 : public Airbench94, public ::testing::WithParamInterface<bool> {
 protected:
  Airbench94Bf16()
      : Airbench94(cpu_has_native_bf16() ? make_cpu_backend(2, GetParam(), CpuBf16::activations)
                                         : make_cpu_backend(2)) {}
  void SetUp() override {
    if (!cpu_has_native_bf16()) GTEST_SKIP() << "this CPU has no bf16 arithmetic";
  }
};

INSTANTIATE_TEST_SUITE_P(Layouts, Airbench94Bf16, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? "Blocked" : "Nhwc";
                         });

// With bf16 activations the CPU backend runs each block's batch norm + GELU as one op
// (BatchNorm2d::forward_gelu; the op itself is checked against the composed ops in
// tests/backend/test_batchnorm_gelu.cpp): through the layer, a training pass fills every
// trainable gradient, reports the fixed scales' as 0, counts the batch and moves the running
// statistics, and an evaluation after it (the composed ops) gives finite logits.
TEST_P(Airbench94Bf16, FusedBatchNormGeluThroughTheLayer) {
  ASSERT_TRUE(backend->fuses_batchnorm_gelu({4, 15, 15, 64}, DType::bf16));
  backend->fill(model->grads(), std::nanf(""));
  const Tensor x = images(4);
  expect_training_pass(gradients(x));
  const Tensor& eval = model->forward(x, false);
  std::vector<float> out(eval.numel());
  backend->copy_to_host(eval, out.data());
  for (float v : out) ASSERT_TRUE(std::isfinite(v));
}

// The same network and batch on a second NHWC bf16 backend: on NHWC the training pass is
// repeated bit for bit; on blocked activations every op sums in another order, which moves a
// bf16 rounding here and there where the kernels differ, so logits and each parameter's
// gradient agree to a small relative error (a misread layout would be off by O(1); on an AMD
// EPYC without AMX, where both layouts run the same jit kernels, they agree bit for bit).
TEST_P(Airbench94Bf16, TrainingPassMatchesTheNhwcNetwork) {
  ASSERT_EQ(backend->name().find("nChw16c") != std::string::npos, GetParam()) << backend->name();
  auto nhwc_backend = make_cpu_backend(2, false, CpuBf16::activations);
  ModelSpec spec;
  spec.arch = "airbench94";
  spec.seed = 7;
  auto nhwc_model = make_model(spec, *nhwc_backend);
  const Tensor x = images(8);
  std::vector<float> logits, nhwc_logits;
  const std::vector<float> g = training_gradients(*backend, *model, x, &logits);
  const std::vector<float> nhwc_g = training_gradients(*nhwc_backend, *nhwc_model, x, &nhwc_logits);
  const double tolerance = GetParam() ? 1e-2 : 0.0;
  EXPECT_LE(relative_l2_error(logits.data(), nhwc_logits.data(), logits.size()), tolerance);
  for (const auto& e : model->store().entries()) {
    if (e.kind != StateKind::parameter || !e.trainable) continue;
    const double err = relative_l2_error(&g[e.offset], &nhwc_g[e.offset], e.numel());
    EXPECT_LE(err, tolerance) << e.name;
  }
}

// Each block's first convolution feeds a floor-mode 2x2 pool, which never reads the last row
// and column of its odd map (31, 15, 7 from 32x32 images): where the CPU backend's
// convolutions run direct (bf16, or f32 without Winograd) it leaves them out
// (Conv2d::set_feeds_floor_pool2, Conv2dGeometry::trim): 12.8 M of the 118.1 M multiply-adds
// an image (still counted). Against a backend that computes the whole maps, on the same batch:
// logits, every gradient and the running statistics of a training pass with the whitening
// trained and of one with it frozen, and an evaluation's logits, agree. The same
// products are summed by kernels of another output width, so an f32 sum may change in its last
// bits (and in bf16 a rounding may move); a dropped or misplaced row would be off by O(1).
static void expect_trimmed_pass_is_the_whole_maps(cpu::CpuConvOptions options, double tolerance) {
  options.trim = true;
  cpu::CpuBackend trimmed(2, options);
  options.trim = false;
  cpu::CpuBackend whole(2, options);
  ASSERT_TRUE(trimmed.supports_conv_trim()) << trimmed.name();
  ASSERT_FALSE(whole.supports_conv_trim());
  EXPECT_NE(whole.name().find("untrimmed conv maps"), std::string::npos) << whole.name();
  ModelSpec spec;
  spec.arch = "airbench94";
  spec.seed = 7;
  auto trimmed_model = make_model(spec, trimmed), whole_model = make_model(spec, whole);
  ParameterStore &store = trimmed_model->store(), &whole_store = whole_model->store();
  const Tensor x = test_images(trimmed, 8);  // host memory: both CPU backends read it
  const auto expect_close = [&](const std::vector<float>& got, const std::vector<float>& want,
                                const std::string& what) {
    ASSERT_EQ(got.size(), want.size()) << what;
    EXPECT_LE(relative_l2_error(got.data(), want.data(), got.size()), tolerance) << what;
  };
  // A training pass; then every trainable gradient and every buffer (running statistics).
  const auto expect_same_training_pass = [&](const std::string& pass) {
    std::vector<float> logits, whole_logits;
    const std::vector<float> g = training_gradients(trimmed, *trimmed_model, x, &logits);
    const std::vector<float> whole_g = training_gradients(whole, *whole_model, x, &whole_logits);
    expect_close(logits, whole_logits, pass + ": logits");
    for (const auto& e : store.entries()) {
      if (e.kind == StateKind::parameter && !e.trainable) continue;
      std::vector<float> state(e.numel()), whole_state(e.numel());
      if (e.kind == StateKind::parameter) {
        state.assign(&g[e.offset], &g[e.offset] + e.numel());
        whole_state.assign(&whole_g[e.offset], &whole_g[e.offset] + e.numel());
      } else {
        store.read(*store.find(e.name), state.data(), state.size());
        whole_store.read(*whole_store.find(e.name), whole_state.data(), whole_state.size());
      }
      expect_close(state, whole_state, pass + ": " + e.name);
    }
  };
  store.reset_macs();
  expect_same_training_pass("whitening trained");
  EXPECT_EQ(store.forward_macs(), 8 * 118147360) << "the network's count";
  // The recipe after epoch 3: nothing below block1 needs a gradient, so block1.conv1's
  // trimmed backward computes its weight gradient alone.
  for (ParameterStore* s : {&store, &whole_store})
    for (const char* name : {"whiten.weight", "whiten.bias"})
      s->set_requires_grad(*s->find(name), false);
  expect_same_training_pass("whitening frozen");
  // An evaluation forward (running statistics), as the final TTA runs it.
  const auto eval_logits = [&](Backend& be, Model& model) {
    const Tensor& out = model.forward(x, false);
    std::vector<float> host(out.numel());
    be.copy_to_host(out, host.data());
    return host;
  };
  expect_close(eval_logits(trimmed, *trimmed_model), eval_logits(whole, *whole_model),
               "evaluation logits");
}

// bf16 activations and convolutions, NHWC and blocked. On an AMD EPYC without AMX all agree
// bit for bit but block2.conv1's and block3.conv1's weight gradients (f32, summed in another
// order: 2.1e-7 and 4.8e-8 relative).
TEST_P(Airbench94Bf16, TrimmedConvolutionsLeaveTheTrainingPassAsTheWholeMaps) {
  cpu::CpuConvOptions options;
  options.bf16 = options.bf16_activations = true;
  options.blocked_activations = GetParam();
  expect_trimmed_pass_is_the_whole_maps(options, 1e-3);
}

// f32 direct convolutions (DPTRAIN_CPU_CONV=direct): f32 sums in another order only (bit for
// bit on an AMD EPYC).
TEST(Airbench94Direct, TrimmedConvolutionsLeaveTheTrainingPassAsTheWholeMaps) {
  cpu::CpuConvOptions options;
  options.winograd = false;
  expect_trimmed_pass_is_the_whole_maps(options, 1e-5);
}

// The layer: an odd map feeding a floor pool loses its last row and column where the backend
// can trim, and those kept are the whole map's; an even map, a map odd one way only, a layer
// not feeding such a pool, and a backend that cannot trim compute the whole map. Multiply-adds
// are counted for the whole map either way.
TEST(Conv2dFeedingAFloorPool, TrimsOddMapsOnlyWhereTheBackendCan) {
  cpu::CpuConvOptions options;
  options.winograd = false;
  options.trim = true;
  cpu::CpuBackend trimming(1, options);
  options.trim = false;
  cpu::CpuBackend whole(1, options);
  const auto output = [](Backend& be, const Tensor& x, bool feeds_pool, int64_t* macs) {
    ParameterStore store(be);
    Conv2d conv(store, "conv", 8, 16, 3, 1, 1);
    store.finalize();
    std::vector<float> w(16 * 8 * 9);
    for (size_t i = 0; i < w.size(); ++i) w[i] = std::sin(0.7f * i);
    store.write("conv.weight", w.data(), w.size());
    conv.set_feeds_floor_pool2(feeds_pool);
    const Tensor y = in_nhwc_order(conv.forward(x, true));
    if (macs) *macs = store.forward_macs();
    return y;
  };
  std::mt19937 gen(4);
  const Tensor odd = random_tensor({2, 7, 7, 8}, gen);
  int64_t trimmed_macs = 0, whole_macs = 0;
  const Tensor y = output(trimming, odd, true, &trimmed_macs);
  const Tensor y_whole = output(whole, odd, true, &whole_macs);
  ASSERT_EQ(y.shape(), (Shape{2, 6, 6, 16}));
  ASSERT_EQ(y_whole.shape(), (Shape{2, 7, 7, 16}));
  EXPECT_EQ(trimmed_macs, whole_macs);
  EXPECT_EQ(whole_macs, 2 * 7 * 7 * 16 * 8 * 9);
  for (int64_t n = 0; n < 2; ++n)
    for (int64_t r = 0; r < 6; ++r)
      for (int64_t c = 0; c < 6 * 16; ++c)
        ASSERT_NEAR(y.data()[(n * 6 + r) * 6 * 16 + c], y_whole.data()[(n * 7 + r) * 7 * 16 + c],
                    1e-5)
            << n << " " << r << " " << c;
  EXPECT_EQ(output(trimming, odd, false, nullptr).shape(), (Shape{2, 7, 7, 16}));
  EXPECT_EQ(output(trimming, random_tensor({2, 8, 8, 8}, gen), true, nullptr).shape(),
            (Shape{2, 8, 8, 16}));
  EXPECT_EQ(output(trimming, random_tensor({2, 7, 8, 8}, gen), true, nullptr).shape(),
            (Shape{2, 7, 8, 16}));
}
