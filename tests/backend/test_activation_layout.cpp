// The CPU backend's blocked activations (cpu/activation_layout.h): a residual stage run with
// nChw16c activations must give what the same stage gives with NHWC ones, tensor for tensor,
// and an operand that arrives in the other layout must be reordered, not misread.
#include <gtest/gtest.h>

#include "backend/cpu/cpu_backend.h"
#include "test_util.h"

namespace dp::test {
namespace {

cpu::CpuConvOptions options(bool blocked) {
  cpu::CpuConvOptions o;
  o.winograd = true;
  o.gemm_small_maps = true;
  o.blocked_activations = blocked;
  return o;
}

// One CIFAR-ResNet transition block and the head after it, forward and backward, on a backend:
// x (16 channels, 16x16) -> conv 3x3 s2 -> BN+ReLU -> conv 3x3 (32 channels, Winograd where
// blocked) -> BN, plus the 1x1 s2 shortcut conv -> BN; add+ReLU; global average pool. Keeps
// every tensor a caller could compare.
struct StageRun {
  Tensor h1, a1, h2, b2, s1, s2, y, pooled;         // forward
  Tensor d_pooled, dy, dsum, db2, da1, dh1, dx_main, ds1, dx;  // backward
  Tensor dw1, dw2, dws, dg1, dbeta1, dg2, dbeta2, dgs, dbetas;
};

StageRun run_stage(cpu::CpuBackend& be, uint32_t seed) {
  std::mt19937 gen(seed);
  const int64_t n = 4;
  const Conv2dGeometry c1{n, 16, 16, 16, 32, 3, 2, 1}, c2{n, 8, 8, 32, 32, 3, 1, 1},
      cs{n, 16, 16, 16, 32, 1, 2, 0};
  BatchNormGeometry bn_relu{n, 8, 8, 32}, bn{n, 8, 8, 32};
  bn_relu.fuse_relu = true;
  Tensor x = random_tensor({n, 16, 16, 16}, gen);
  Tensor w1 = random_tensor({32, 16, 3, 3}, gen), w2 = random_tensor({32, 32, 3, 3}, gen),
         ws = random_tensor({32, 16, 1, 1}, gen);
  Tensor gamma = random_tensor({32}, gen, 0.5f, 1.5f), beta = random_tensor({32}, gen);
  Tensor d_pooled = random_tensor({n, 32}, gen);
  Tensor rm = Tensor::zeros({32}), rv = Tensor::zeros({32});
  Tensor mean1, var1, work1, mean2, var2, work2, means, vars, works;

  StageRun r;
  be.conv2d_forward(c1, x, w1, r.h1);
  be.batchnorm_forward_train(bn_relu, r.h1, gamma, beta, rm, rv, r.a1, mean1, var1, work1);
  be.conv2d_forward(c2, r.a1, w2, r.h2);
  be.batchnorm_forward_train(bn, r.h2, gamma, beta, rm, rv, r.b2, mean2, var2, work2);
  be.conv2d_forward(cs, x, ws, r.s1);
  be.batchnorm_forward_train(bn, r.s1, gamma, beta, rm, rv, r.s2, means, vars, works);
  be.add_relu_forward(r.b2, r.s2, r.y);
  be.global_avgpool_forward(r.y, r.pooled);

  r.dy = Tensor::empty(r.y.shape());
  be.global_avgpool_backward(d_pooled, r.dy);
  be.add_relu_backward(r.y, r.dy, r.dsum);
  be.batchnorm_backward(bn, r.h2, r.dsum, gamma, beta, mean2, var2, work2, r.db2, r.dg2, r.dbeta2);
  be.conv2d_backward(c2, r.a1, w2, r.db2, &r.da1, r.dw2);
  be.batchnorm_backward(bn_relu, r.h1, r.da1, gamma, beta, mean1, var1, work1, r.dh1, r.dg1,
                        r.dbeta1);
  be.conv2d_backward(c1, x, w1, r.dh1, &r.dx_main, r.dw1);
  be.batchnorm_backward(bn, r.s1, r.dsum, gamma, beta, means, vars, works, r.ds1, r.dgs, r.dbetas);
  be.conv2d_backward(cs, x, ws, r.ds1, &r.dx, r.dws);
  be.accumulate(r.dx_main, r.dx);
  return r;
}

TEST(CpuActivationLayout, BlockedStageMatchesNhwcStage) {
  cpu::CpuBackend blocked(0, options(true)), plain(0, options(false));
  const StageRun b = run_stage(blocked, 3), p = run_stage(plain, 3);

  // Otherwise the comparison below would prove nothing.
  for (const Tensor* t : {&b.h1, &b.a1, &b.h2, &b.b2, &b.y, &b.dy, &b.dsum, &b.da1, &b.dh1})
    EXPECT_EQ(t->layout(), Layout::nchw16c);
  for (const Tensor* t : {&p.h1, &p.y, &p.dy, &p.dh1}) EXPECT_EQ(t->layout(), Layout::nhwc);
  EXPECT_EQ(b.dx.layout(), Layout::nhwc);  // 16 channels stay NHWC

  // 1e-4: Winograd (blocked, 32 channels) against direct convolution rounds differently.
  EXPECT_CLOSE(b.h1, p.h1, 1e-5);
  EXPECT_CLOSE(b.a1, p.a1, 1e-5);
  EXPECT_CLOSE(b.h2, p.h2, 1e-4);
  EXPECT_CLOSE(b.y, p.y, 1e-4);
  EXPECT_CLOSE(b.pooled, p.pooled, 1e-4);
  EXPECT_CLOSE(b.dy, p.dy, 1e-6);
  EXPECT_CLOSE(b.dsum, p.dsum, 1e-6);
  EXPECT_CLOSE(b.da1, p.da1, 1e-4);
  EXPECT_CLOSE(b.dh1, p.dh1, 1e-4);
  EXPECT_CLOSE(b.dx, p.dx, 1e-4);
  for (auto [mine, ref] : {std::pair{&b.dw1, &p.dw1}, {&b.dw2, &p.dw2}, {&b.dws, &p.dws},
                           {&b.dg1, &p.dg1}, {&b.dbeta1, &p.dbeta1}, {&b.dg2, &p.dg2},
                           {&b.dbeta2, &p.dbeta2}, {&b.dgs, &p.dgs}, {&b.dbetas, &p.dbetas}})
    EXPECT_CLOSE(*mine, *ref, 1e-4);
  // Winograd ran on the blocked 32-channel conv: it does not reproduce direct's bits.
  EXPECT_GT(relative_max_error(b.h2, p.h2), 0.0);
}

// A convolution's random input and weights (drawn in that order) and the output it writes.
struct ConvRun {
  Tensor x, w, y;
};

ConvRun run_conv(cpu::CpuBackend& be, const Conv2dGeometry& g, std::mt19937& gen) {
  ConvRun r{random_tensor({g.n, g.h, g.w, g.c_in}, gen),
            random_tensor({g.c_out, g.c_in, g.kernel, g.kernel}, gen), Tensor()};
  be.conv2d_forward(g, r.x, r.w, r.y);
  return r;
}

TEST(CpuActivationLayout, CopyToHostHandsOutNhwc) {
  cpu::CpuBackend be(0, options(true));
  std::mt19937 gen(4);
  const Tensor y = run_conv(be, {2, 8, 8, 16, 48, 1, 1, 0}, gen).y;
  ASSERT_EQ(y.layout(), Layout::nchw16c);
  Tensor host = Tensor::empty(y.shape());
  be.copy_to_host(y, host.data());
  const Tensor oracle = in_nhwc_order(y);  // index arithmetic, not oneDNN
  for (int64_t i = 0; i < host.numel(); ++i) ASSERT_EQ(host.data()[i], oracle.data()[i]) << i;
}

// An operand in the other layout than the op computes in (a caller's NHWC tensor meeting a
// blocked one) is reordered, so every op still sees the right values.
TEST(CpuActivationLayout, MixedLayoutsAreReordered) {
  cpu::CpuBackend be(0, options(true));
  std::mt19937 gen(5);
  const Conv2dGeometry g{2, 8, 8, 32, 32, 1, 1, 0};
  const auto [x, w, y] = run_conv(be, g, gen);
  ASSERT_EQ(y.layout(), Layout::nchw16c);
  const Tensor y_nhwc = in_nhwc_order(y);
  Tensor other = random_tensor(y.shape(), gen);  // NHWC

  Tensor sum;
  be.add_relu_forward(y, other, sum);
  EXPECT_EQ(sum.layout(), Layout::nchw16c);
  Tensor sum_ref = Tensor::empty(y.shape());
  for (int64_t i = 0; i < sum_ref.numel(); ++i)
    sum_ref.data()[i] = std::max(0.f, y_nhwc.data()[i] + other.data()[i]);
  EXPECT_CLOSE(sum, sum_ref, 1e-7);

  Tensor acc = copy_of(y);
  acc.set_layout(y.layout());
  be.accumulate(other, acc);
  Tensor acc_ref = Tensor::empty(y.shape());
  for (int64_t i = 0; i < acc_ref.numel(); ++i)
    acc_ref.data()[i] = y_nhwc.data()[i] + other.data()[i];
  EXPECT_CLOSE(acc, acc_ref, 1e-7);

  Tensor masked;
  be.relu_backward(sum, other, masked);
  const Tensor sum_nhwc = in_nhwc_order(sum);
  Tensor masked_ref = Tensor::empty(y.shape());
  for (int64_t i = 0; i < masked_ref.numel(); ++i)
    masked_ref.data()[i] = sum_nhwc.data()[i] > 0 ? other.data()[i] : 0.f;
  EXPECT_CLOSE(masked, masked_ref, 1e-7);

  // Conv and batch-norm backward with an NHWC output gradient equal backward with the same
  // values blocked (`sum` is blocked; sum_host its NHWC copy).
  Tensor sum_host = Tensor::empty(y.shape());
  be.copy_to_host(sum, sum_host.data());
  Tensor dx_b, dw_b, dx_h, dw_h;
  be.conv2d_backward(g, x, w, sum, &dx_b, dw_b);
  be.conv2d_backward(g, x, w, sum_host, &dx_h, dw_h);
  EXPECT_CLOSE(dx_b, dx_h, 1e-6);
  EXPECT_CLOSE(dw_b, dw_h, 1e-6);

  const BatchNormGeometry bg{2, 8, 8, 32};
  Tensor gamma = random_tensor({32}, gen), beta = random_tensor({32}, gen);
  Tensor rm = Tensor::zeros({32}), rv = Tensor::zeros({32}), bn_y, mean, var, work;
  be.batchnorm_forward_train(bg, y, gamma, beta, rm, rv, bn_y, mean, var, work);
  Tensor bdx_b, bdg_b, bdb_b, bdx_h, bdg_h, bdb_h;
  be.batchnorm_backward(bg, y, sum, gamma, beta, mean, var, work, bdx_b, bdg_b, bdb_b);
  be.batchnorm_backward(bg, y, sum_host, gamma, beta, mean, var, work, bdx_h, bdg_h, bdb_h);
  EXPECT_EQ(bdx_h.layout(), Layout::nchw16c);
  EXPECT_CLOSE(bdx_b, bdx_h, 1e-6);
  EXPECT_CLOSE(bdg_b, bdg_h, 1e-6);
  EXPECT_CLOSE(bdb_b, bdb_h, 1e-6);
}

// A GEMM-lowered convolution (small output map) reads NHWC: a blocked input is reordered in
// and its input gradient goes back out in the input's layout.
TEST(CpuActivationLayout, GemmLoweredConvTakesBlockedInput) {
  cpu::CpuBackend blocked(0, options(true)), plain(0, options(false));
  std::mt19937 gen(6);
  const Conv2dGeometry widen{2, 8, 8, 16, 32, 1, 1, 0};  // makes a blocked 32-channel 8x8 map
  const Conv2dGeometry lowered{2, 8, 8, 32, 64, 1, 2, 0};  // 1x1 s2 to 4x4: one GEMM
  ASSERT_TRUE(blocked.conv_runs_as_gemm(lowered));
  Tensor x = random_tensor({2, 8, 8, 16}, gen), w0 = random_tensor({32, 16, 1, 1}, gen);
  Tensor w = random_tensor({64, 32, 1, 1}, gen), dy = random_tensor({2, 4, 4, 64}, gen);
  Tensor results[2][4];  // per backend: mid, y, dx, dw
  for (int k = 0; k < 2; ++k) {
    cpu::CpuBackend& be = k == 0 ? blocked : plain;
    Tensor* r = results[k];
    be.conv2d_forward(widen, x, w0, r[0]);
    be.conv2d_forward(lowered, r[0], w, r[1]);
    be.conv2d_backward(lowered, r[0], w, dy, &r[2], r[3]);
  }
  EXPECT_EQ(results[0][0].layout(), Layout::nchw16c);
  EXPECT_EQ(results[0][2].layout(), Layout::nchw16c);
  for (int i = 1; i < 4; ++i) EXPECT_CLOSE(results[0][i], results[1][i], 1e-5) << i;
}

// The option-A shortcut at both CIFAR-ResNet transitions reads its input and writes its
// output in the backend's layouts, never misreading one for the other: 16 NHWC channels at
// 16x16 -> 32 blocked at 8x8 (stage 2), 32 blocked at 16x16 -> 64 blocked at 8x8 (stage 3), and
// backward the same way round. The reference is index arithmetic on NHWC copies.
TEST(CpuActivationLayout, SubsamplePadReadsAndWritesBlockedTensors) {
  cpu::CpuBackend be(0, options(true));
  std::mt19937 gen(7);
  for (int64_t c_in : {16, 32}) {
    SCOPED_TRACE(c_in);
    // A 1x1 conv makes an input in the layout a network gives these channels at 16x16.
    const auto [x0, w, x] = run_conv(be, {2, 16, 16, 8, c_in, 1, 1, 0}, gen);
    ASSERT_EQ(x.layout(), c_in == 32 ? Layout::nchw16c : Layout::nhwc);
    const SubsamplePadGeometry g{2, 16, 16, c_in, 2 * c_in, 2};
    Tensor y, dx;
    be.subsample_pad_forward(g, x, y);
    EXPECT_EQ(y.layout(), Layout::nchw16c);
    // dy blocked as well: the gradient of a blocked stage's output.
    const auto [dy0, dw, dy] = run_conv(be, {2, 8, 8, 8, 2 * c_in, 1, 1, 0}, gen);
    ASSERT_EQ(dy.layout(), Layout::nchw16c);
    be.subsample_pad_backward(g, dy, dx);
    EXPECT_EQ(dx.layout(), x.layout());

    const Tensor xn = in_nhwc_order(x), yn = in_nhwc_order(y), dyn = in_nhwc_order(dy);
    const Tensor dxn = in_nhwc_order(dx);
    for (int64_t b = 0; b < 2; ++b)
      for (int64_t i = 0; i < 16; ++i)
        for (int64_t j = 0; j < 16; ++j)
          for (int64_t k = 0; k < 2 * c_in; ++k) {
            const bool kept = k < c_in;
            if (i < 8 && j < 8) {
              const float want = kept ? xn.data()[((b * 16 + 2 * i) * 16 + 2 * j) * c_in + k] : 0.f;
              ASSERT_EQ(yn.data()[((b * 8 + i) * 8 + j) * 2 * c_in + k], want) << b << i << j << k;
            }
            if (!kept) continue;
            const bool read = i % 2 == 0 && j % 2 == 0;
            const float grad = read ? dyn.data()[((b * 8 + i / 2) * 8 + j / 2) * 2 * c_in + k] : 0.f;
            ASSERT_EQ(dxn.data()[((b * 16 + i) * 16 + j) * c_in + k], grad) << b << i << j << k;
          }
  }
}

// The premise of cpu_bf16_convolution_layout() (the layout --precision bf16 keeps activations
// in): asked for any layout, oneDNN's optimised bf16 convolution on this CPU reads its input
// and writes its output in it, on airbench94's main shapes. Otherwise every bf16 convolution
// would reorder its operands in and out.
TEST(CpuActivationLayout, Bf16LayoutIsTheOneOnednnsBf16KernelsTake) {
  if (!cpu_has_native_bf16())
    GTEST_SKIP() << "this CPU has neither AVX512-BF16 nor AMX: no bf16 convolutions here";
  using dnnl::memory;
  const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  const memory::format_tag expected = cpu_bf16_convolution_layout() == Layout::nhwc
                                          ? memory::format_tag::nhwc
                                          : memory::format_tag::nChw16c;
  for (const Conv2dGeometry& g :
       {Conv2dGeometry{8, 15, 15, 64, 64, 3, 1, 1}, Conv2dGeometry{8, 15, 15, 64, 256, 3, 1, 1},
        Conv2dGeometry{8, 7, 7, 256, 256, 3, 1, 1}}) {
    SCOPED_TRACE(fmt::format("{}x{} {}->{}", g.h, g.w, g.c_in, g.c_out));
    const memory::dims src{g.n, g.c_in, g.h, g.w}, dst{g.n, g.c_out, g.out_h(), g.out_w()};
    const memory::desc src_any(src, memory::data_type::bf16, memory::format_tag::any);
    const memory::desc dst_any(dst, memory::data_type::bf16, memory::format_tag::any);
    const memory::desc weights_any({g.c_out, g.c_in, g.kernel, g.kernel}, memory::data_type::bf16,
                                   memory::format_tag::any);
    const dnnl::convolution_forward::desc desc(
        dnnl::prop_kind::forward_training, dnnl::algorithm::convolution_direct, src_any,
        weights_any, dst_any, {g.stride, g.stride}, {g.pad, g.pad}, {g.pad, g.pad});
    const dnnl::convolution_forward::primitive_desc pd(desc, engine);
    EXPECT_EQ(std::string(pd.impl_info_str()).find("ref"), std::string::npos)
        << pd.impl_info_str() << ": no optimised bf16 kernel";
    EXPECT_EQ(pd.src_desc(), memory::desc(src, memory::data_type::bf16, expected))
        << pd.impl_info_str();
    EXPECT_EQ(pd.dst_desc(), memory::desc(dst, memory::data_type::bf16, expected))
        << pd.impl_info_str();
  }
}

}  // namespace
}  // namespace dp::test
