// Conv2d::forward_gelu / backward_gelu (airbench's whitening layer: a 2x2 convolution with bias,
// then GELU). The fused route of a bf16 backend against the layers composed in f32 on the same
// weights and input, within bf16's rounding; a backward that the forward did not foresee
// (nothing required a gradient then) recomputes the GELU's input and gives the same gradients;
// an evaluation forward keeps nothing for a backward.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>

#include "backend/backend.h"
#include "backend/cpu/simd_lanes.h"
#include "bf16_host.h"  // tests/backend: bf16 host tensors
#include "core/error.h"
#include "nn/activations.h"
#include "nn/conv2d.h"
#include "nn/parameter_store.h"
#include "test_util.h"  // tests/backend: random tensors, relative error

namespace dp::test {
namespace {

using nn::Conv2d;
using nn::Gelu;
using nn::ParameterStore;

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
  const Tensor& grad(const char* name) { return store.grad(id(name)); }
};

class ConvGelu : public ::testing::Test {
 protected:
  void SetUp() override {
    bf16 = make_cpu_backend(1, false, CpuBf16::activations);
    // Skipped for the hardware only: a fusion predicate that broke must fail, not skip.
    if (!cpu_has_native_bf16() || !cpu::simd::cpu_has_avx512_bf16())
      GTEST_SKIP() << "this CPU lacks AVX512-BF16: no fused whitening layer";
    ASSERT_TRUE(bf16->fuses_conv_bias_gelu({2, 9, 9, 3, 24, 2, 1, 0}, DType::f32));
    f32 = make_cpu_backend(1, false);  // NHWC, as the bf16 one
  }
  std::unique_ptr<Backend> bf16, f32;
  std::mt19937 gen{3};
  const Tensor w = random_tensor({24, 3, 2, 2}, gen, -0.5f, 0.5f);
  const Tensor b = random_tensor({24}, gen, -0.3f, 0.3f);
  const Tensor x = random_tensor({2, 9, 9, 3}, gen, -2.f, 2.f);
  const Tensor dy = rounded_to_bf16(random_tensor({2, 8, 8, 24}, gen));
};

TEST_F(ConvGelu, FusedRouteMatchesTheComposedLayersInF32) {
  ASSERT_FALSE(f32->fuses_conv_bias_gelu({2, 9, 9, 3, 24, 2, 1, 0}, DType::f32));
  Whitening fused(*bf16, w, b), composed(*f32, w, b);
  const Tensor& y = fused.conv.forward_gelu(x, fused.act, true);
  const Tensor& y_ref = composed.conv.forward_gelu(x, composed.act, true);
  ASSERT_EQ(y.dtype(), DType::bf16);
  // bf16 operands and output: a few parts in 1e3 of the largest value.
  EXPECT_LT(relative_max_error(download_as_f32(*bf16, y), y_ref), 1e-2);
  fused.conv.backward_gelu(as_bf16(dy), fused.act);
  composed.conv.backward_gelu(dy, composed.act);
  EXPECT_LT(relative_max_error(fused.grad("whiten.bias"), composed.grad("whiten.bias")), 1e-2);
  EXPECT_LT(relative_max_error(fused.grad("whiten.weight"), composed.grad("whiten.weight")),
            1e-2);
}

TEST_F(ConvGelu, AnUnforeseenBackwardRecomputesTheGeluInput) {
  Whitening kept(*bf16, w, b), rebuilt(*bf16, w, b);
  const Tensor dyd = as_bf16(dy);
  kept.conv.forward_gelu(x, kept.act, true);
  // Nothing requires a gradient during this forward, so it keeps no z...
  rebuilt.store.set_requires_grad(rebuilt.id("whiten.weight"), false);
  rebuilt.store.set_requires_grad(rebuilt.id("whiten.bias"), false);
  rebuilt.conv.forward_gelu(x, rebuilt.act, true);
  // ... and then the bias does.
  rebuilt.store.set_requires_grad(rebuilt.id("whiten.bias"), true);
  kept.store.set_requires_grad(kept.id("whiten.weight"), false);
  kept.conv.backward_gelu(dyd, kept.act);
  rebuilt.conv.backward_gelu(dyd, rebuilt.act);
  EXPECT_EQ(relative_max_error(rebuilt.grad("whiten.bias"), kept.grad("whiten.bias")), 0.0);
  const Tensor& db = kept.grad("whiten.bias");
  EXPECT_TRUE(std::any_of(db.data(), db.data() + db.numel(), [](float v) { return v != 0; }));
}

TEST_F(ConvGelu, AnEvaluationForwardKeepsNothingForBackward) {
  Whitening layer(*bf16, w, b);
  layer.conv.forward_gelu(x, layer.act, /*train=*/false);
  EXPECT_THROW(layer.conv.backward_gelu(as_bf16(dy), layer.act), dp::Error);
}

}  // namespace
}  // namespace dp::test
