// The CPU backend's bf16 activations (--precision bf16 for airbench94): every op the network runs
// besides the convolution (test_conv.cpp) takes bf16 activations and gradients, computes in f32
// and rounds its bf16 results once. The oracle is the same backend in f32 on the widened values:
// each bf16 result must be that f32 result rounded (expect_rounded_from). On NHWC and on
// blocked activations. The ops that have only f32 loops refuse bf16 tensors instead of
// misreading them.
#include <gtest/gtest.h>

#include <random>

#include "backend/backend.h"
#include "backend/cpu/cpu_backend.h"
#include "bf16_host.h"
#include "core/error.h"
#include "test_util.h"

namespace dp::test {
namespace {

// Run on NHWC activations and on blocked (nChw16c) ones, as --precision bf16 keeps them on
// CPUs without AMX; the f32 oracle backend takes the same layout, so both sum alike.
class CpuBf16Activations : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    if (!cpu_has_native_bf16())
      GTEST_SKIP() << "this CPU has neither AVX512-BF16 nor AMX: no bf16 activations here";
    bf16 = make_cpu_backend(0, blocked(), CpuBf16::activations);
    f32 = make_cpu_backend(0, blocked());
  }
  bool blocked() const { return GetParam(); }
  // A random activation, rounded: its bf16 form and the same values in f32, both in the layout
  // the backend keeps such a tensor in (blocked from 32 channels on maps of 3x3 and more).
  std::pair<Tensor, Tensor> activation(const Shape& shape, float lo = -1.f, float hi = 1.f) {
    Tensor values = rounded_to_bf16(random_tensor(shape, gen, lo, hi));
    if (shape.size() != 4) return {as_bf16(values), values};
    const Layout layout = cpu::preferred_layout(blocked(), shape[3], shape[1], shape[2]);
    return {as_bf16_in(values, layout),
            layout == Layout::nchw16c ? in_blocked_order(values) : values};
  }
  std::unique_ptr<Backend> bf16, f32;
  std::mt19937 gen{11};
};

INSTANTIATE_TEST_SUITE_P(Layouts, CpuBf16Activations, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? "Blocked" : "Nhwc";
                         });

TEST_P(CpuBf16Activations, BackendDeclaresThem) {
  EXPECT_EQ(bf16->activation_dtype(), DType::bf16);
  EXPECT_EQ(f32->activation_dtype(), DType::f32);
  EXPECT_NE(bf16->name().find("bf16 activations"), std::string::npos) << bf16->name();
  Tensor t = bf16->allocate({3, 5}, DType::bf16);
  bf16->fill(t, 0.1f);
  for (int64_t i = 0; i < t.numel(); ++i) EXPECT_EQ(t.data<uint16_t>()[i], bf16_bits(0.1f));
}

TEST_P(CpuBf16Activations, GeluForwardAndBackward) {
  auto [x, xf] = activation({4, 7, 7, 64}, -4.f, 4.f);
  auto [dy, dyf] = activation(x.shape());
  Tensor y = bf16->allocate(x.shape(), DType::bf16), dx = bf16->allocate(x.shape(), DType::bf16);
  Tensor y_ref, dx_ref;
  ASSERT_EQ(x.layout(), blocked() ? Layout::nchw16c : Layout::nhwc);
  bf16->gelu_forward(x, y);
  f32->gelu_forward(xf, y_ref);
  EXPECT_EQ(y.layout(), x.layout());
  expect_rounded_from(*bf16, y, y_ref, "gelu y");
  bf16->gelu_backward(x, dy, dx);
  f32->gelu_backward(xf, dyf, dx_ref);
  expect_rounded_from(*bf16, dx, dx_ref, "gelu dx");
}

// The whitening conv's bias (24 channels, NHWC in either layout) and a blocked-width one.
TEST_P(CpuBf16Activations, ChannelBiasForwardAndBackward) {
  for (int64_t c : {24, 64}) {
    SCOPED_TRACE(c);
    auto [y, yf] = activation({3, 9, 9, c});
    Tensor b = random_tensor({c}, gen);
    Tensor y_ref = copy_of(yf);
    bf16->channel_bias_forward(b, y);
    f32->channel_bias_forward(b, y_ref);
    expect_rounded_from(*bf16, y, y_ref, "biased y");
    auto [dy, dyf] = activation(y.shape());
    Tensor db, db_ref;
    bf16->channel_bias_backward(dy, db);
    f32->channel_bias_backward(dyf, db_ref);
    EXPECT_EQ(db.dtype(), DType::f32);
    EXPECT_CLOSE(db, db_ref, 1e-6);
  }
}

// Max pooling moves bf16 values without arithmetic: forward is exact, and backward hands each
// window's gradient to its maximum as the f32 kernel does (both take the first of tied maxima).
TEST_P(CpuBf16Activations, MaxPoolIsExact) {
  for (const PoolGeometry& g :
       {PoolGeometry{4, 31, 31, 64, 2, 2, 0}, PoolGeometry{4, 3, 3, 256, 3, 3, 0}}) {
    auto [x, xf] = activation({g.n, g.h, g.w, g.c});
    auto [dy, dyf] = activation({g.n, g.out_h(), g.out_w(), g.c});
    Tensor y = bf16->allocate(dy.shape(), DType::bf16), ws, dx, y_ref, ws_ref, dx_ref;
    bf16->maxpool_forward(g, x, y, ws);
    f32->maxpool_forward(g, xf, y_ref, ws_ref);
    ASSERT_EQ(y.dtype(), DType::bf16);
    EXPECT_EQ(relative_max_error(download_as_f32(*bf16, y), y_ref), 0.0);
    bf16->maxpool_backward(g, dy, ws, dx);
    f32->maxpool_backward(g, dyf, ws_ref, dx_ref);
    ASSERT_EQ(dx.dtype(), DType::bf16);
    EXPECT_EQ(relative_max_error(download_as_f32(*bf16, dx), dx_ref), 0.0);
  }
}

// airbench's batch norm: train forward (bf16 y, f32 statistics), backward, inference.
TEST_P(CpuBf16Activations, BatchNorm) {
  BatchNormGeometry g{8, 7, 7, 256, 1e-12f, 0.4f};
  auto [x, xf] = activation({g.n, g.h, g.w, g.c}, -2.f, 3.f);
  auto [dy, dyf] = activation(x.shape());
  Tensor gamma = random_tensor({g.c}, gen, 0.5f, 1.5f), beta = random_tensor({g.c}, gen);
  Tensor rm = Tensor::zeros({g.c}), rv = Tensor::zeros({g.c}), rm_ref = copy_of(rm),
         rv_ref = copy_of(rv);
  Tensor y = bf16->allocate(x.shape(), DType::bf16), mean, var, ws, y_ref, mean_ref, var_ref,
         ws_ref;
  bf16->batchnorm_forward_train(g, x, gamma, beta, rm, rv, y, mean, var, ws);
  f32->batchnorm_forward_train(g, xf, gamma, beta, rm_ref, rv_ref, y_ref, mean_ref, var_ref,
                               ws_ref);
  expect_rounded_from(*bf16, y, y_ref, "bn y");
  EXPECT_CLOSE(mean, mean_ref, 1e-6);
  EXPECT_CLOSE(var, var_ref, 1e-6);
  EXPECT_CLOSE(rm, rm_ref, 1e-6);
  EXPECT_CLOSE(rv, rv_ref, 1e-6);
  Tensor dx = bf16->allocate(x.shape(), DType::bf16), dgamma, dbeta, dx_ref, dgamma_ref, dbeta_ref;
  bf16->batchnorm_backward(g, x, dy, gamma, beta, mean, var, ws, dx, dgamma, dbeta);
  f32->batchnorm_backward(g, xf, dyf, gamma, beta, mean_ref, var_ref, ws_ref, dx_ref, dgamma_ref,
                          dbeta_ref);
  expect_rounded_from(*bf16, dx, dx_ref, "bn dx");
  EXPECT_CLOSE(dgamma, dgamma_ref, 1e-5);
  EXPECT_CLOSE(dbeta, dbeta_ref, 1e-5);
  Tensor yi = bf16->allocate(x.shape(), DType::bf16), yi_ref;
  bf16->batchnorm_forward_inference(g, x, gamma, beta, rm, rv, yi);
  f32->batchnorm_forward_inference(g, xf, gamma, beta, rm, rv, yi_ref);
  expect_rounded_from(*bf16, yi, yi_ref, "bn inference y");
}

// SyncBatchNorm's pieces (airbench94 with --sync-bn on several ranks) on bf16 activations.
TEST_P(CpuBf16Activations, SyncBatchNormPieces) {
  BatchNormGeometry g{8, 7, 7, 64, 1e-12f, 0.4f};
  auto [x, xf] = activation({g.n, g.h, g.w, g.c}, -2.f, 3.f);
  auto [dy, dyf] = activation(x.shape());
  Tensor mean, m2, mean_ref, m2_ref;
  bf16->batchnorm_local_moments(g, x, mean, m2);
  f32->batchnorm_local_moments(g, xf, mean_ref, m2_ref);
  EXPECT_EQ(relative_max_error(mean, mean_ref), 0.0) << "the same values, summed alike";
  EXPECT_EQ(relative_max_error(m2, m2_ref), 0.0);
  Tensor gamma = random_tensor({g.c}, gen, 0.5f, 1.5f), beta = random_tensor({g.c}, gen);
  Tensor invstd = random_tensor({g.c}, gen, 0.5f, 2.f);
  Tensor y = bf16->allocate(x.shape(), DType::bf16), y_ref;
  bf16->batchnorm_normalize(g, x, gamma, beta, mean, invstd, y);
  f32->batchnorm_normalize(g, xf, gamma, beta, mean, invstd, y_ref);
  expect_rounded_from(*bf16, y, y_ref, "normalized y");
  Tensor sum_dy, sum_dy_xhat, sum_dy_ref, sum_dy_xhat_ref;
  bf16->batchnorm_backward_sums(g, x, dy, gamma, beta, mean, invstd, sum_dy, sum_dy_xhat);
  f32->batchnorm_backward_sums(g, xf, dyf, gamma, beta, mean, invstd, sum_dy_ref, sum_dy_xhat_ref);
  EXPECT_EQ(relative_max_error(sum_dy, sum_dy_ref), 0.0);
  EXPECT_EQ(relative_max_error(sum_dy_xhat, sum_dy_xhat_ref), 0.0);
  Tensor dx = bf16->allocate(x.shape(), DType::bf16), dx_ref;
  bf16->batchnorm_backward_input(g, x, dy, gamma, beta, mean, invstd, sum_dy, sum_dy_xhat, dx);
  f32->batchnorm_backward_input(g, xf, dyf, gamma, beta, mean, invstd, sum_dy, sum_dy_xhat, dx_ref);
  expect_rounded_from(*bf16, dx, dx_ref, "sync bn dx");
}

// The head: a bf16 input is widened exactly, the logits are f32, the input gradient bf16.
TEST_P(CpuBf16Activations, LinearWidensItsInput) {
  auto [x, xf] = activation({16, 256});
  Tensor w = random_tensor({10, 256}, gen), dy = random_tensor({16, 10}, gen);
  Tensor y, y_ref, dw, db, dw_ref, db_ref, dx_ref;
  bf16->linear_forward(x, w, Tensor(), y);
  f32->linear_forward(xf, w, Tensor(), y_ref);
  EXPECT_EQ(y.dtype(), DType::f32);
  EXPECT_EQ(relative_max_error(y, y_ref), 0.0);
  Tensor dx = bf16->allocate(x.shape(), DType::bf16);
  bf16->linear_backward(x, w, dy, dx, dw, db);
  f32->linear_backward(xf, w, dy, dx_ref, dw_ref, db_ref);
  expect_rounded_from(*bf16, dx, dx_ref, "linear dx");
  EXPECT_EQ(relative_max_error(dw, dw_ref), 0.0);
}

// ResNet ops have f32 loops only: a bf16 operand is an error naming the op, never misread.
TEST_P(CpuBf16Activations, F32OnlyOpsRefuseThem) {
  auto [x, xf] = activation({2, 4, 4, 16});
  Tensor y, out = copy_of(xf);
  const auto expect_refused = [](const char* op, auto&& call) {
    try {
      call();
      ADD_FAILURE() << op << " accepted a bf16 operand";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(op), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("no bf16 kernel"), std::string::npos) << e.what();
    }
  };
  expect_refused("relu_forward", [&] { bf16->relu_forward(x, y); });
  expect_refused("add_relu_forward", [&] { bf16->add_relu_forward(x, xf, y); });
  expect_refused("accumulate", [&] { bf16->accumulate(x, out); });
  expect_refused("global_avgpool_forward", [&] { bf16->global_avgpool_forward(x, y); });
  expect_refused("scale", [&] { bf16->scale(x, 2.f, y); });
  expect_refused("relu_backward", [&] { bf16->relu_backward(x, x, y); });
  expect_refused("accumulate_relu_backward", [&] { bf16->accumulate_relu_backward(x, xf, out); });
  Tensor pooled_grad = Tensor::zeros({2, 16}), dx = bf16->allocate(x.shape(), DType::bf16);
  expect_refused("global_avgpool_backward",
                 [&] { bf16->global_avgpool_backward(pooled_grad, dx); });
  expect_refused("subsample_pad_forward", [&] {
    bf16->subsample_pad_forward({2, 4, 4, 16, 32, 2}, x, y);
  });
  const BatchNormGeometry g{2, 4, 4, 16};
  Tensor ones = Tensor::zeros({16}), rm = Tensor::zeros({16}), rv = Tensor::zeros({16}), mean, var,
         ws;
  expect_refused("batch norm + add + ReLU", [&] {
    bf16->batchnorm_add_relu_forward_train(g, x, ones, ones, rm, rv, x, y, mean, var, ws);
  });
}

}  // namespace
}  // namespace dp::test
