// BF16 mixed precision on the CUDA backend against the CPU backend in FP32. Inputs are rounded
// to bf16 first and handed to both, so what remains is the backend's own rounding: once per
// stored activation (2^-9 relative), accumulation in f32 either way. A whole ResNet-50 step
// then has to track the FP32 step closely (logits, loss, gradients, updated weights).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "backend/backend.h"
#include "backend/cuda/make_cuda_backend.h"
#include "bf16_host.h"
#include "damped_resnet50.h"
#include "nn/model.h"
#include "optim/sgd.h"
#include "test_util.h"
#include "twin_sgd.h"

namespace dp::test {
namespace {

// One bf16 rounding of values up to the reference's scale, with room for f32 summation order.
constexpr double kOneRounding = 1.0 / 256;

class CudaBf16 : public ::testing::Test {
 protected:
  static CudaOptions mixed() {
    CudaOptions o;
    o.mixed_bf16 = true;
    return o;
  }
  CudaBf16() : cpu(make_cpu_backend()), cuda(make_cuda_backend(mixed())) {}

  Tensor up(const Tensor& host) {  // f32 (parameters, statistics, logits' gradient)
    Tensor d = cuda->allocate(host.shape(), host.dtype());
    cuda->copy_from_host(host.data<void>(), d);
    return d;
  }
  void expect_close(const char* what, const Tensor& device, const Tensor& host, double tol,
                    DType expected_type = DType::bf16) {
    ASSERT_EQ(device.shape(), host.shape()) << what;
    EXPECT_EQ(device.dtype(), expected_type) << what;
    Tensor h = download_as_f32(*cuda, device);
    EXPECT_LE(relative_max_error(h, host), tol) << what;
  }

  std::unique_ptr<Backend> cpu, cuda;
};

TEST_F(CudaBf16, ActivationsAreBf16AndTheNetworkInputIsConverted) {
  ASSERT_EQ(cuda->activation_dtype(), DType::bf16);
  EXPECT_NE(cuda->name().find("BF16"), std::string::npos) << cuda->name();
  std::mt19937 gen(1);
  Conv2dGeometry g{2, 8, 8, 3, 16, 3, 1, 1};
  // The first convolution takes the loader's f32 images and rounds them itself.
  Tensor x = random_tensor({g.n, g.h, g.w, g.c_in}, gen);
  Tensor w = rounded_to_bf16(random_tensor({g.c_out, g.c_in, 3, 3}, gen));
  Tensor y, cy;
  cpu->conv2d_forward(g, rounded_to_bf16(x), w, y);
  cuda->conv2d_forward(g, up(x), up(w), cy);
  expect_close("conv of an f32 input", cy, y, 2 * kOneRounding);
}

TEST_F(CudaBf16, ElementwiseAndPoolingRoundOnce) {
  std::mt19937 gen(3);
  Tensor a = rounded_to_bf16(random_tensor({4, 8, 8, 32}, gen));
  Tensor b = rounded_to_bf16(random_tensor({4, 8, 8, 32}, gen));
  Tensor ga = upload_as_bf16(*cuda, a), gb = upload_as_bf16(*cuda, b);
  Tensor y, cy, d, cd;
  cpu->relu_forward(a, y);
  cuda->relu_forward(ga, cy);
  expect_close("relu", cy, y, 0);
  cpu->relu_backward(y, b, d);
  cuda->relu_backward(cy, gb, cd);
  expect_close("relu backward", cd, d, 0);
  cpu->add_relu_forward(a, b, y);
  cuda->add_relu_forward(ga, gb, cy);
  expect_close("add_relu", cy, y, kOneRounding);
  cpu->accumulate(a, b);
  cuda->accumulate(ga, gb);
  expect_close("accumulate", gb, b, kOneRounding);
  Tensor mask, cmask;  // a ReLU output: zero where a <= 0
  cpu->relu_forward(a, mask);
  cuda->relu_forward(ga, cmask);
  cpu->accumulate_relu_backward(a, mask, b);
  cuda->accumulate_relu_backward(ga, cmask, gb);
  expect_close("accumulate_relu_backward", gb, b, 2 * kOneRounding);

  PoolGeometry p{4, 9, 9, 32, 3, 2, 1};
  Tensor x = rounded_to_bf16(random_tensor({4, 9, 9, 32}, gen));
  Tensor pdy = rounded_to_bf16(random_tensor({4, 5, 5, 32}, gen));
  Tensor ws, cws, py, cpy, pdx, cpdx;
  cpu->maxpool_forward(p, x, py, ws);
  cpu->maxpool_backward(p, pdy, ws, pdx);
  Tensor gx = upload_as_bf16(*cuda, x);
  cuda->maxpool_forward(p, gx, cpy, cws);
  cuda->maxpool_backward(p, upload_as_bf16(*cuda, pdy), cws, cpdx);
  expect_close("maxpool", cpy, py, 0);
  expect_close("maxpool backward", cpdx, pdx, kOneRounding);

  Tensor avg, cavg, adx = Tensor::empty(x.shape());
  Tensor cadx = cuda->allocate(x.shape(), DType::bf16);
  cpu->global_avgpool_forward(x, avg);
  cuda->global_avgpool_forward(gx, cavg);
  expect_close("global avgpool", cavg, avg, kOneRounding);
  Tensor ady = rounded_to_bf16(random_tensor({4, 32}, gen));
  cpu->global_avgpool_backward(ady, adx);
  cuda->global_avgpool_backward(upload_as_bf16(*cuda, ady), cadx);
  expect_close("global avgpool backward", cadx, adx, kOneRounding);
}

// GELU, scale and the channel bias in bf16: arithmetic in f32, one rounding per stored value.
TEST_F(CudaBf16, GeluScaleChannelBiasRoundOnce) {
  std::mt19937 gen(6);
  Tensor a = rounded_to_bf16(random_tensor({4, 15, 15, 64}, gen, -5.f, 5.f));
  Tensor b = rounded_to_bf16(random_tensor(a.shape(), gen));
  Tensor ga = upload_as_bf16(*cuda, a), gb = upload_as_bf16(*cuda, b);
  Tensor y, cy, d, cd;
  cpu->gelu_forward(a, y);
  cuda->gelu_forward(ga, cy);
  expect_close("gelu", cy, y, kOneRounding);
  cpu->gelu_backward(a, b, d);
  cuda->gelu_backward(ga, gb, cd);
  expect_close("gelu backward", cd, d, kOneRounding);
  cpu->scale(a, 1.f / 9.f, y);
  cuda->scale(ga, 1.f / 9.f, cy);
  expect_close("scale", cy, y, kOneRounding);
  Tensor bias = random_tensor({64}, gen), ya = copy_of(a), gya = upload_as_bf16(*cuda, a);
  cpu->channel_bias_forward(bias, ya);
  cuda->channel_bias_forward(up(bias), gya);
  expect_close("channel bias", gya, ya, kOneRounding);
  Tensor db, cdb;
  cpu->channel_bias_backward(b, db);
  cuda->channel_bias_backward(gb, cdb);
  expect_close("channel bias backward", cdb, db, 1e-5, DType::f32);
}

// Max pooling with kernel = stride (airbench's 2x2 on 31x31, its last row and column dropped,
// and 3x3 on 3x3) on bf16 values with many ties: the same winners as the CPU (the first
// maximum in window order), so output and gradient are equal bit for bit.
TEST_F(CudaBf16, WindowMaxPoolPicksTheCpuWinners) {
  std::mt19937 gen(14);
  for (const PoolGeometry& p :
       {PoolGeometry{4, 31, 31, 64, 2, 2, 0}, PoolGeometry{4, 3, 3, 256, 3, 3, 0}}) {
    SCOPED_TRACE(fmt::format("{}x{} kernel {}", p.h, p.w, p.kernel));
    Tensor x = random_tensor({p.n, p.h, p.w, p.c}, gen);
    for (int64_t i = 0; i < x.numel(); ++i) x.data()[i] = std::round(x.data()[i] * 4.f) / 4.f;
    const Tensor dy = rounded_to_bf16(random_tensor({p.n, p.out_h(), p.out_w(), p.c}, gen));
    Tensor ws, cws, y, cy, dx, cdx;
    cpu->maxpool_forward(p, x, y, ws);
    cpu->maxpool_backward(p, dy, ws, dx);
    cuda->maxpool_forward(p, upload_as_bf16(*cuda, x), cy, cws);
    cuda->maxpool_backward(p, upload_as_bf16(*cuda, dy), cws, cdx);
    expect_close("maxpool", cy, y, 0);
    expect_close("maxpool backward", cdx, dx, 0);
  }
}

// --sync-bn's batch norm pieces on bf16 activations, over more rows than one reduction chunk
// (512) and more channels than one tile (32), against the CPU in f32 on the same values:
// moments and gradient sums differ by summation order only, the normalised output and dx by
// their one rounding.
TEST_F(CudaBf16, SyncBatchNormPiecesRoundOnce) {
  std::mt19937 gen(13);
  const BatchNormGeometry g{8, 15, 15, 72, 1e-5f, 0.1f, false};
  const int64_t rows = g.n * g.h * g.w;
  const Tensor x = rounded_to_bf16(random_tensor({g.n, g.h, g.w, g.c}, gen, -2.f, 3.f));
  const Tensor dy = rounded_to_bf16(random_tensor(x.shape(), gen));
  const Tensor gx = upload_as_bf16(*cuda, x), gdy = upload_as_bf16(*cuda, dy);
  Tensor mean, m2, cmean, cm2;
  cpu->batchnorm_local_moments(g, x, mean, m2);
  cuda->batchnorm_local_moments(g, gx, cmean, cm2);
  expect_close("mean", cmean, mean, 1e-5, DType::f32);
  expect_close("m2", cm2, m2, 1e-5, DType::f32);

  Tensor invstd = Tensor::empty({g.c});
  for (int64_t k = 0; k < g.c; ++k)
    invstd.data()[k] = 1.f / std::sqrt(m2.data()[k] / static_cast<float>(rows) + g.eps);
  const Tensor gamma = random_tensor({g.c}, gen, 0.5f, 1.5f), beta = random_tensor({g.c}, gen);
  const Tensor ggamma = up(gamma), gbeta = up(beta), gmean = up(mean), ginvstd = up(invstd);
  Tensor y, cy;
  cpu->batchnorm_normalize(g, x, gamma, beta, mean, invstd, y);
  cuda->batchnorm_normalize(g, gx, ggamma, gbeta, gmean, ginvstd, cy);
  expect_close("normalize", cy, y, kOneRounding);

  Tensor sum_dy, sum_dy_xhat, csum_dy, csum_dy_xhat;
  cpu->batchnorm_backward_sums(g, x, dy, gamma, beta, mean, invstd, sum_dy, sum_dy_xhat);
  cuda->batchnorm_backward_sums(g, gx, gdy, ggamma, gbeta, gmean, ginvstd, csum_dy, csum_dy_xhat);
  expect_close("sum of dy", csum_dy, sum_dy, 1e-5, DType::f32);
  expect_close("sum of dy xhat", csum_dy_xhat, sum_dy_xhat, 1e-5, DType::f32);

  Tensor mean_dy = copy_of(sum_dy), mean_dy_xhat = copy_of(sum_dy_xhat);
  for (int64_t k = 0; k < g.c; ++k) {
    mean_dy.data()[k] /= static_cast<float>(rows);
    mean_dy_xhat.data()[k] /= static_cast<float>(rows);
  }
  Tensor dx, cdx;
  cpu->batchnorm_backward_input(g, x, dy, gamma, beta, mean, invstd, mean_dy, mean_dy_xhat, dx);
  cuda->batchnorm_backward_input(g, gx, gdy, ggamma, gbeta, gmean, ginvstd, up(mean_dy),
                                 up(mean_dy_xhat), cdx);
  expect_close("dx", cdx, dx, 2 * kOneRounding);
}

// The option-A shortcut only copies: bf16 values pass through unrounded.
TEST_F(CudaBf16, SubsamplePadCopiesExactly) {
  std::mt19937 gen(12);
  const SubsamplePadGeometry g{4, 16, 16, 32, 64, 2};
  Tensor x = rounded_to_bf16(random_tensor({g.n, g.h, g.w, g.c_in}, gen));
  Tensor dy = rounded_to_bf16(random_tensor({g.n, g.out_h(), g.out_w(), g.c_out}, gen));
  Tensor y, dx, cy, cdx;
  cpu->subsample_pad_forward(g, x, y);
  cpu->subsample_pad_backward(g, dy, dx);
  cuda->subsample_pad_forward(g, upload_as_bf16(*cuda, x), cy);
  cuda->subsample_pad_backward(g, upload_as_bf16(*cuda, dy), cdx);
  expect_close("subsample_pad y", cy, y, 0);
  expect_close("subsample_pad dx", cdx, dx, 0);
}

TEST_F(CudaBf16, ConvolutionBatchNormLinear) {
  std::mt19937 gen(5);
  for (const Conv2dGeometry& g : {Conv2dGeometry{4, 8, 8, 64, 64, 3, 1, 1},
                                  Conv2dGeometry{4, 8, 8, 64, 128, 1, 2, 0}}) {
    SCOPED_TRACE(fmt::format("conv k{} s{}", g.kernel, g.stride));
    Tensor x = rounded_to_bf16(random_tensor({g.n, g.h, g.w, g.c_in}, gen));
    Tensor w = rounded_to_bf16(random_tensor({g.c_out, g.c_in, g.kernel, g.kernel}, gen));
    Tensor dy = rounded_to_bf16(random_tensor({g.n, g.out_h(), g.out_w(), g.c_out}, gen));
    Tensor y, dx, dw, cy, cdx, cdw;
    cpu->conv2d_forward(g, x, w, y);
    cpu->conv2d_backward(g, x, w, dy, &dx, dw);
    Tensor gx = upload_as_bf16(*cuda, x), gw = up(w);
    cuda->conv2d_forward(g, gx, gw, cy);
    cuda->conv2d_backward(g, gx, gw, upload_as_bf16(*cuda, dy), &cdx, cdw);
    expect_close("conv y", cy, y, 2 * kOneRounding);
    expect_close("conv dx", cdx, dx, 2 * kOneRounding);
    expect_close("conv dw (widened to the f32 gradient)", cdw, dw, 2 * kOneRounding, DType::f32);
  }

  BatchNormGeometry g{8, 4, 4, 32};
  g.fuse_relu = true;
  Tensor x = rounded_to_bf16(random_tensor({8, 4, 4, 32}, gen, -2.f, 3.f));
  Tensor dy = rounded_to_bf16(random_tensor(x.shape(), gen));
  Tensor gamma = random_tensor({32}, gen, 0.5f, 1.5f), beta = random_tensor({32}, gen);
  Tensor rm = random_tensor({32}, gen), rv = random_tensor({32}, gen, 0.5f, 2.f);
  Tensor grm = up(rm), grv = up(rv);
  Tensor y, sm, sv, ws, dx, dg, db, cy, csm, csv, cws, cdx, cdg, cdb;
  cpu->batchnorm_forward_train(g, x, gamma, beta, rm, rv, y, sm, sv, ws);
  cpu->batchnorm_backward(g, x, dy, gamma, beta, sm, sv, ws, dx, dg, db);
  Tensor gx = upload_as_bf16(*cuda, x), gg = up(gamma), gb = up(beta);
  cuda->batchnorm_forward_train(g, gx, gg, gb, grm, grv, cy, csm, csv, cws);
  cuda->batchnorm_backward(g, gx, upload_as_bf16(*cuda, dy), gg, gb, csm, csv, cws, cdx, cdg,
                           cdb);
  expect_close("bn+relu y", cy, y, 2 * kOneRounding);
  expect_close("running mean (f32)", grm, rm, 1e-4, DType::f32);
  expect_close("running var (f32)", grv, rv, 1e-4, DType::f32);
  expect_close("bn dx", cdx, dx, 4 * kOneRounding);
  expect_close("bn dgamma (f32)", cdg, dg, 1e-3, DType::f32);
  expect_close("bn dbeta (f32)", cdb, db, 1e-3, DType::f32);

  Tensor lx = rounded_to_bf16(random_tensor({16, 2048}, gen));
  Tensor lw = rounded_to_bf16(random_tensor({10, 2048}, gen));
  Tensor lb = random_tensor({10}, gen), ldy = rounded_to_bf16(random_tensor({16, 10}, gen));
  Tensor ly, cly, ldx, cldx, ldw, cldw, ldb, cldb;
  cpu->linear_forward(lx, lw, lb, ly);
  cpu->linear_backward(lx, lw, ldy, ldx, ldw, ldb);
  Tensor glx = upload_as_bf16(*cuda, lx), glw = up(lw);
  cuda->linear_forward(glx, glw, up(lb), cly);
  cuda->linear_backward(glx, glw, up(ldy), cldx, cldw, cldb);
  expect_close("linear logits (f32)", cly, ly, 1e-4, DType::f32);
  expect_close("linear dx", cldx, ldx, kOneRounding);
  expect_close("linear dw (f32)", cldw, ldw, 1e-4, DType::f32);
  expect_close("linear db (f32)", cldb, ldb, 1e-5, DType::f32);
}

// Relative L2 distance and cosine of two host tensors.
double relative_l2(const Tensor& a, const Tensor& ref) {
  double diff = 0, norm = 0;
  for (int64_t i = 0; i < ref.numel(); ++i) {
    const double d = static_cast<double>(a.data()[i]) - ref.data()[i];
    diff += d * d;
    norm += static_cast<double>(ref.data()[i]) * ref.data()[i];
  }
  return std::sqrt(diff / std::max(norm, 1e-300));
}

TEST_F(CudaBf16, ResNet50TrainingStepTracksFp32) {
  auto cpu_model = make_damped_resnet50(*cpu);
  auto cuda_model = make_damped_resnet50(*cuda);
  std::mt19937 gen(6);
  const int64_t n = 32;  // BN over at least 32 values per channel in the last stage
  Tensor images = random_tensor({n, 32, 32, 3}, gen, -2.f, 2.f);
  Tensor labels = cycled_labels(n, 1);
  TwinSgd sgd(*cpu, *cpu_model, *cuda, *cuda_model, SgdHyper{0.1f, 0.9f, 0.f, 5e-4f, false});

  const Tensor& logits = cpu_model->forward(images, true);
  Tensor dlogits, cdlogits;
  int64_t hits = 0, chits = 0;
  const float loss = cpu->softmax_cross_entropy(logits, labels, 0.1f, dlogits, hits);
  const Tensor& clogits = cuda_model->forward(up(images), true);
  const float closs = cuda->softmax_cross_entropy(clogits, up(labels), 0.1f, cdlogits, chits);
  Tensor host_logits = download_as_f32(*cuda, clogits);
  EXPECT_LT(relative_l2(host_logits, logits), 5e-2) << "logits";
  EXPECT_NEAR(closs, loss, 2e-2 * std::abs(loss));

  cpu_model->backward(dlogits);
  cuda_model->backward(cdlogits);
  Tensor grads = download_as_f32(*cuda, cuda_model->grads());
  // The bars: PyTorch's own bf16 autocast step on this model and batch, measured against
  // float64 by bf16_reference_deviation.py, with 25% room (gradients 0.382 relative L2; cosine
  // per tensor min 0.898, median 0.937; parameters 0.0243). bf16 keeps 8 bits of mantissa, and
  // fifty layers of it move ResNet-50's gradients that far, in PyTorch as here.
  EXPECT_LT(relative_l2(grads, cpu_model->grads()), 1.25 * 0.382) << "all gradients";
  const nn::ParameterStore& store = cpu_model->store();
  std::vector<double> cosines;
  for (nn::ParameterStore::Id id = 0; id < store.entries().size(); ++id) {
    const nn::StateEntry& e = store.entry(id);
    if (e.kind != nn::StateKind::parameter) continue;
    Tensor mine = Tensor::view(grads.data() + e.offset, e.shape);
    Tensor ref = Tensor::view(cpu_model->grads().data() + e.offset, e.shape);
    const double cosine = dot(mine, ref) / std::sqrt(dot(mine, mine) * dot(ref, ref) + 1e-300);
    EXPECT_GT(cosine, 1 - 1.25 * (1 - 0.898)) << "direction of the gradient of " << e.name;
    cosines.push_back(cosine);
    // A gradient scaled by a constant keeps its cosine; its norm shows it. PyTorch's bf16 step
    // gives per-tensor norm ratios in [0.91, 1.1] (bf16_reference_deviation.py); 25% room.
    const double ratio = std::sqrt(dot(mine, mine) / std::max(dot(ref, ref), 1e-300));
    EXPECT_GT(ratio, 1 - 1.25 * (1 - 0.91)) << "norm of the gradient of " << e.name;
    EXPECT_LT(ratio, 1 + 1.25 * (1.1 - 1)) << "norm of the gradient of " << e.name;
  }
  std::nth_element(cosines.begin(), cosines.begin() + cosines.size() / 2, cosines.end());
  EXPECT_GT(cosines[cosines.size() / 2], 1 - 1.25 * (1 - 0.937)) << "median gradient cosine";
  sgd.step(0.1f);
  // The master weights stay f32; one step moves them by lr * (gradient + momentum), so they
  // carry the gradients' difference, scaled down.
  Tensor params = download_as_f32(*cuda, cuda_model->params());
  EXPECT_LT(relative_max_error(params, cpu_model->params()), 1.25 * 0.0243) << "updated weights";
  Tensor buffers = download_as_f32(*cuda, cuda_model->buffers());
  EXPECT_LT(relative_l2(buffers, cpu_model->buffers()), 2e-2) << "running statistics";
}

TEST(CudaUploader, BatchesArriveIntactAndStayValidForOneMoreUpload) {
  auto cuda = make_cuda_backend(CudaOptions{});
  auto uploader = cuda->make_batch_uploader();
  ASSERT_TRUE(uploader);
  std::mt19937 gen(9);
  Tensor host = Tensor::empty({64, 8, 8, 3});
  std::vector<Tensor> sent, received;
  for (int step = 0; step < 5; ++step) {
    Tensor batch = random_tensor(host.shape(), gen);
    std::copy_n(batch.data(), batch.numel(), host.data());
    received.push_back(uploader->upload(host));
    sent.push_back(batch);
    // The host buffer is the loader's to refill at once.
    std::fill_n(host.data(), host.numel(), -7.f);
    if (step >= 1) {  // the previous batch is still intact on the device
      Tensor prev = download_as_f32(*cuda, received[step - 1]);
      EXPECT_EQ(relative_max_error(prev, sent[step - 1]), 0) << "batch " << step - 1;
    }
    Tensor now = download_as_f32(*cuda, received[step]);
    EXPECT_EQ(relative_max_error(now, sent[step]), 0) << "batch " << step;
  }
  // A smaller last batch reuses the slot's memory.
  Tensor last = random_tensor({10, 8, 8, 3}, gen);
  const Tensor& d = uploader->upload(last);
  EXPECT_EQ(d.shape(), last.shape());
  EXPECT_EQ(relative_max_error(download_as_f32(*cuda, d), last), 0);
}

}  // namespace
}  // namespace dp::test
