// Conv2d::forward_gelu / backward_gelu (airbench's whitening layer: a 2x2 convolution with bias,
// then GELU). The fused route of a bf16 backend against the layers composed in f32 on the same
// weights and input, within bf16's rounding; a backward that the forward did not foresee
// (nothing required a gradient then) recomputes the GELU's input and gives the same gradients;
// an evaluation forward keeps nothing for a backward.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "backend/backend.h"
#include "core/bf16.h"
#include "core/error.h"
#include "nn/activations.h"
#include "nn/conv2d.h"
#include "nn/parameter_store.h"

namespace dp::test {
namespace {

using nn::Conv2d;
using nn::Gelu;
using nn::ParameterStore;

Tensor random(const Shape& shape, std::mt19937& gen, float scale) {
  Tensor t = Tensor::empty(shape);
  std::uniform_real_distribution<float> u(-scale, scale);
  for (int64_t i = 0; i < t.numel(); ++i) t.data()[i] = u(gen);
  return t;
}

// A backend tensor (f32 or bf16) as host f32 values.
std::vector<double> values(Backend& be, const Tensor& t) {
  std::vector<double> out(t.numel());
  if (t.dtype() == DType::f32) {
    std::vector<float> raw(t.numel());
    be.copy_to_host(t, raw.data());
    for (size_t i = 0; i < raw.size(); ++i) out[i] = raw[i];
  } else {
    std::vector<uint16_t> raw(t.numel());
    be.copy_to_host(t, raw.data());
    for (size_t i = 0; i < raw.size(); ++i) out[i] = bf16_value(raw[i]);
  }
  return out;
}

// max |a - b| / max |b|
double relative(const std::vector<double>& a, const std::vector<double>& b) {
  double err = 0, scale = 1e-30;
  for (size_t i = 0; i < b.size(); ++i) {
    err = std::max(err, std::abs(a[i] - b[i]));
    scale = std::max(scale, std::abs(b[i]));
  }
  return err / scale;
}

// The whitening layer on its own store, with given weights.
struct Whitening {
  ParameterStore store;
  Conv2d conv;
  Gelu act;
  Whitening(Backend& be, const Tensor& w, const Tensor& b)
      : store(be), conv(store, "whiten", 3, 24, 2, 1, 0, /*bias=*/true), act(be) {
    store.finalize();
    conv.set_input_grad(false);
    store.write("whiten.weight", w.data(), w.numel());
    store.write("whiten.bias", b.data(), b.numel());
  }
  ParameterStore::Id id(const char* name) { return *store.find(name); }
  std::vector<double> grad(const char* name) {
    return values(store.backend(), store.grad(id(name)));
  }
};

class ConvGelu : public ::testing::Test {
 protected:
  void SetUp() override {
    bf16 = make_cpu_backend(1, false, CpuBf16::activations);
    if (!cpu_has_native_bf16() ||
        !bf16->fuses_conv_bias_gelu({2, 9, 9, 3, 24, 2, 1, 0}, DType::f32))
      GTEST_SKIP() << "this CPU lacks AVX512-BF16: no fused whitening layer";
    f32 = make_cpu_backend(1, false);  // NHWC, as the bf16 one
  }
  std::unique_ptr<Backend> bf16, f32;
  std::mt19937 gen{3};
  const Tensor w = random({24, 3, 2, 2}, gen, 0.5f), b = random({24}, gen, 0.3f);
  const Tensor x = random({2, 9, 9, 3}, gen, 2.f), dy = random({2, 8, 8, 24}, gen, 1.f);
};

// On the device: x as given, dy in the activation type.
Tensor upload(Backend& be, const Tensor& host, DType dtype) {
  Tensor d = be.allocate(host.shape(), dtype);
  if (dtype == DType::f32) {
    be.copy_from_host(host.data(), d);
  } else {
    std::vector<uint16_t> bits(host.numel());
    for (int64_t i = 0; i < host.numel(); ++i) bits[i] = bf16_bits(host.data()[i]);
    be.copy_from_host(bits.data(), d);
  }
  return d;
}

TEST_F(ConvGelu, FusedRouteMatchesTheComposedLayersInF32) {
  ASSERT_FALSE(f32->fuses_conv_bias_gelu({2, 9, 9, 3, 24, 2, 1, 0}, DType::f32));
  Whitening fused(*bf16, w, b), composed(*f32, w, b);
  const Tensor& y = fused.conv.forward_gelu(upload(*bf16, x, DType::f32), fused.act, true);
  const Tensor& y_ref = composed.conv.forward_gelu(upload(*f32, x, DType::f32), composed.act, true);
  ASSERT_EQ(y.dtype(), DType::bf16);
  // bf16 operands and output: a few parts in 1e3 of the largest value.
  EXPECT_LT(relative(values(*bf16, y), values(*f32, y_ref)), 1e-2);
  fused.conv.backward_gelu(upload(*bf16, dy, DType::bf16), fused.act);
  composed.conv.backward_gelu(upload(*f32, dy, DType::f32), composed.act);
  EXPECT_LT(relative(fused.grad("whiten.bias"), composed.grad("whiten.bias")), 1e-2);
  EXPECT_LT(relative(fused.grad("whiten.weight"), composed.grad("whiten.weight")), 1e-2);
}

TEST_F(ConvGelu, AnUnforeseenBackwardRecomputesTheGeluInput) {
  Whitening kept(*bf16, w, b), rebuilt(*bf16, w, b);
  const Tensor xd = upload(*bf16, x, DType::f32), dyd = upload(*bf16, dy, DType::bf16);
  kept.conv.forward_gelu(xd, kept.act, true);
  // Nothing requires a gradient during this forward, so it keeps no z...
  rebuilt.store.set_requires_grad(rebuilt.id("whiten.weight"), false);
  rebuilt.store.set_requires_grad(rebuilt.id("whiten.bias"), false);
  rebuilt.conv.forward_gelu(xd, rebuilt.act, true);
  // ... and then the bias does.
  rebuilt.store.set_requires_grad(rebuilt.id("whiten.bias"), true);
  kept.store.set_requires_grad(kept.id("whiten.weight"), false);
  kept.conv.backward_gelu(dyd, kept.act);
  rebuilt.conv.backward_gelu(dyd, rebuilt.act);
  EXPECT_EQ(rebuilt.grad("whiten.bias"), kept.grad("whiten.bias"));
  EXPECT_NE(kept.grad("whiten.bias"), std::vector<double>(24, 0.0));
}

TEST_F(ConvGelu, AnEvaluationForwardKeepsNothingForBackward) {
  Whitening layer(*bf16, w, b);
  layer.conv.forward_gelu(upload(*bf16, x, DType::f32), layer.act, /*train=*/false);
  EXPECT_THROW(layer.conv.backward_gelu(upload(*bf16, dy, DType::bf16), layer.act), dp::Error);
}

}  // namespace
}  // namespace dp::test
