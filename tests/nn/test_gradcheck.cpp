// Finite-difference check of a whole ResNet's backward: resnet8 (option-A and option-B
// shortcuts) with 4 base channels on a batch of 4 images of 8x8, BN in train mode, loss = mean
// softmax cross-entropy (computed in double on the host so the numeric side is not limited by
// f32 loss rounding).
// Checked: a sample of single elements of every parameter tensor, a random direction
// through every parameter tensor, and the input gradient.
// Step sizes are small (3e-4 per element, 5e-5 along a +-1 direction) because a larger step
// moves some pre-activations across ReLU's kink, where the loss is not differentiable: at
// 1e-2 that alone gave 10-30% disagreement; at these steps the worst single-element error
// is below 1%, well inside the 3% tolerance, and the f32 forward noise (~1e-7 on the loss)
// stays below the 3e-4 absolute slack.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "backend/backend.h"
#include "nn/model.h"

using namespace dp;
using namespace dp::nn;

namespace {

// Parameterised by the shortcut: option A (the default) and option B's projections.
class GradCheck : public ::testing::TestWithParam<ShortcutKind> {
 protected:
  void SetUp() override {
    backend = make_cpu_backend(1);
    ModelSpec spec;
    spec.arch = "resnet8";
    spec.base_width = 4;
    spec.num_classes = 5;
    spec.seed = 3;
    spec.shortcut = GetParam();
    model = make_model(spec, *backend);
    model->set_input_grad(true);
    std::mt19937 rng(11);
    std::normal_distribution<float> normal;
    image_host.resize(n * 8 * 8 * 3);
    for (float& v : image_host) v = normal(rng);
    images = backend->allocate({n, 8, 8, 3});
    backend->copy_from_host(image_host.data(), images);
    labels = {0, 3, 1, 4};
  }

  // Loss of the current parameters/images; optionally dlogits = dLoss/dlogits.
  double loss(std::vector<float>* dlogits = nullptr) {
    const Tensor& logits = model->forward(images, true);
    std::vector<float> z(logits.numel());
    backend->copy_to_host(logits, z.data());
    int64_t k = logits.dim(1);
    double total = 0;
    if (dlogits) dlogits->assign(z.size(), 0.0f);
    for (int64_t i = 0; i < n; ++i) {
      double mx = -1e300, sum = 0;
      for (int64_t j = 0; j < k; ++j) mx = std::max(mx, double(z[i * k + j]));
      for (int64_t j = 0; j < k; ++j) sum += std::exp(z[i * k + j] - mx);
      total += std::log(sum) + mx - z[i * k + labels[i]];
      if (dlogits)
        for (int64_t j = 0; j < k; ++j)
          (*dlogits)[i * k + j] =
              float((std::exp(z[i * k + j] - mx) / sum - (j == labels[i])) / double(n));
    }
    return total / double(n);
  }

  // Runs forward + backward; returns the analytic parameter and input gradients.
  void analytic(std::vector<float>& grads, std::vector<float>& input_grad) {
    std::vector<float> dl;
    loss(&dl);
    Tensor dlogits = backend->allocate({n, model->spec().num_classes});
    backend->copy_from_host(dl.data(), dlogits);
    model->backward(dlogits);
    grads.resize(model->grads().numel());
    backend->copy_to_host(model->grads(), grads.data());
    input_grad.resize(image_host.size());
    backend->copy_to_host(model->input_grad(), input_grad.data());
  }

  // Central difference of the loss along `direction` (sparse: index -> weight) in the flat
  // parameter buffer (or the images when `on_images`).
  double numeric(const std::vector<std::pair<int64_t, float>>& direction, double eps,
                 bool on_images) {
    std::vector<float> base(on_images ? image_host : std::vector<float>());
    Tensor& target = on_images ? images : model->params();
    if (!on_images) {
      base.resize(target.numel());
      backend->copy_to_host(target, base.data());
    }
    auto shifted = [&](double sign) {
      std::vector<float> p = base;
      for (auto [i, w] : direction) p[i] += float(sign * eps * w);
      backend->copy_from_host(p.data(), target);
      return loss();
    };
    double plus = shifted(+1), minus = shifted(-1);
    backend->copy_from_host(base.data(), target);
    return (plus - minus) / (2 * eps);
  }

  static constexpr int64_t n = 4;
  std::unique_ptr<Backend> backend;
  std::unique_ptr<Model> model;
  std::vector<float> image_host;
  Tensor images;
  std::vector<int> labels;
};

// |numeric - analytic| <= rel * scale + abs, where scale is the larger magnitude.
void expect_close(double num, double ana, double rel, double abs, const std::string& what) {
  double scale = std::max(std::abs(num), std::abs(ana));
  EXPECT_LE(std::abs(num - ana), rel * scale + abs)
      << what << ": numeric " << num << " analytic " << ana;
}

}  // namespace

TEST_P(GradCheck, ParameterGradientsMatchFiniteDifferences) {
  std::vector<float> g, gx;
  analytic(g, gx);
  std::mt19937 rng(5);
  double worst_rel = 0;
  for (const auto& e : model->store().entries()) {
    if (e.kind != StateKind::parameter) continue;
    // The element with the largest gradient plus two random ones.
    int64_t largest = 0;
    for (int64_t i = 1; i < e.numel(); ++i)
      if (std::abs(g[e.offset + i]) > std::abs(g[e.offset + largest])) largest = i;
    std::uniform_int_distribution<int64_t> pick(0, e.numel() - 1);
    for (int64_t i : {largest, pick(rng), pick(rng)}) {
      double num = numeric({{e.offset + i, 1.0f}}, 3e-4, false);
      double ana = g[e.offset + i];
      expect_close(num, ana, 0.03, 3e-4, e.name + "[" + std::to_string(i) + "]");
      if (std::abs(ana) > 1e-2) worst_rel = std::max(worst_rel, std::abs(num - ana) / std::abs(ana));
    }
    // A random +-1 direction through the whole tensor: d/dt L(p + t v) = g . v.
    std::vector<std::pair<int64_t, float>> dir;
    double dot = 0;
    std::bernoulli_distribution coin;
    for (int64_t i = 0; i < e.numel(); ++i) {
      float v = coin(rng) ? 1.0f : -1.0f;
      dir.push_back({e.offset + i, v});
      dot += double(v) * g[e.offset + i];
    }
    double num = numeric(dir, 5e-5, false);
    expect_close(num, dot, 0.03, 5e-4, e.name + " (direction)");
  }
  std::printf("worst relative error over single elements with |g| > 1e-2: %.3g\n", worst_rel);
}

TEST_P(GradCheck, InputGradientMatchesFiniteDifferences) {
  std::vector<float> g, gx;
  analytic(g, gx);
  int64_t largest = 0;
  for (size_t i = 1; i < gx.size(); ++i)
    if (std::abs(gx[i]) > std::abs(gx[largest])) largest = i;
  std::mt19937 rng(9);
  std::uniform_int_distribution<int64_t> pick(0, gx.size() - 1);
  for (int64_t i : {largest, pick(rng), pick(rng), pick(rng)})
    expect_close(numeric({{i, 1.0f}}, 3e-4, true), gx[i], 0.03, 3e-4,
                 "image[" + std::to_string(i) + "]");
  std::vector<std::pair<int64_t, float>> dir;
  double dot = 0;
  std::normal_distribution<float> normal;
  for (size_t i = 0; i < gx.size(); ++i) {
    float v = normal(rng);
    dir.push_back({int64_t(i), v});
    dot += double(v) * gx[i];
  }
  expect_close(numeric(dir, 5e-5, true), dot, 0.03, 5e-4, "images (direction)");
}

// The check must be able to fail: a gradient with one BN scale perturbed is caught.
TEST_P(GradCheck, DetectsAWrongGradient) {
  std::vector<float> g, gx;
  analytic(g, gx);
  const auto& e = model->store().entry(*model->store().find("layer2.0.bn1.weight"));
  int64_t largest = 0;
  for (int64_t i = 1; i < e.numel(); ++i)
    if (std::abs(g[e.offset + i]) > std::abs(g[e.offset + largest])) largest = i;
  double num = numeric({{e.offset + largest, 1.0f}}, 3e-4, false);
  double wrong = 1.2 * g[e.offset + largest];
  EXPECT_GT(std::abs(num - wrong), 0.03 * std::max(std::abs(num), std::abs(wrong)) + 3e-4);
}

INSTANTIATE_TEST_SUITE_P(Shortcuts, GradCheck, ::testing::Values(ShortcutKind::A, ShortcutKind::B),
                         [](const auto& info) { return shortcut_name(info.param); });
