// Convolution on the CPU backend: forward and both backward passes against a naive NHWC/OIHW
// loop on the layer shapes of torchvision ResNet-18/50 and CIFAR ResNets, central-difference
// gradient checks on small geometries, and primitive-cache reuse.
#include <gtest/gtest.h>

#include <algorithm>
#include <limits>

#include "backend/backend.h"
#include "backend/cpu/cpu_backend.h"
#include "backend/cpu/cpu_isa.h"
#include "backend/cpu/simd_lanes.h"
#include "bf16_host.h"
#include "core/error.h"
#include "test_util.h"

namespace dp::test {
namespace {

struct NaiveConv {
  const Conv2dGeometry& g;
  // Calls f(x_index, w_index, y_index) for every multiply-add of the convolution.
  template <typename F>
  void for_each_tap(F&& f) const {
    const int64_t oh = g.out_h(), ow = g.out_w();
    for (int64_t n = 0; n < g.n; ++n)
      for (int64_t y = 0; y < oh; ++y)
        for (int64_t x = 0; x < ow; ++x)
          for (int64_t o = 0; o < g.c_out; ++o)
            for (int64_t kh = 0; kh < g.kernel; ++kh)
              for (int64_t kw = 0; kw < g.kernel; ++kw) {
                int64_t ih = y * g.stride - g.pad + kh, iw = x * g.stride - g.pad + kw;
                if (ih < 0 || ih >= g.h || iw < 0 || iw >= g.w) continue;
                for (int64_t i = 0; i < g.c_in; ++i)
                  f(((n * g.h + ih) * g.w + iw) * g.c_in + i,
                    ((o * g.c_in + i) * g.kernel + kh) * g.kernel + kw,
                    ((n * oh + y) * ow + x) * g.c_out + o);
              }
  }
};

void naive_conv(const Conv2dGeometry& g, const Tensor& x, const Tensor& w, const Tensor& dy,
                Tensor& y, Tensor& dx, Tensor& dw) {
  std::vector<double> acc_y(y.numel()), acc_dx(dx.numel()), acc_dw(dw.numel());
  NaiveConv{g}.for_each_tap([&](int64_t xi, int64_t wi, int64_t yi) {
    acc_y[yi] += static_cast<double>(x.data()[xi]) * w.data()[wi];
    acc_dx[xi] += static_cast<double>(dy.data()[yi]) * w.data()[wi];
    acc_dw[wi] += static_cast<double>(dy.data()[yi]) * x.data()[xi];
  });
  for (int64_t i = 0; i < y.numel(); ++i) y.data()[i] = static_cast<float>(acc_y[i]);
  for (int64_t i = 0; i < dx.numel(); ++i) dx.data()[i] = static_cast<float>(acc_dx[i]);
  for (int64_t i = 0; i < dw.numel(); ++i) dw.data()[i] = static_cast<float>(acc_dw[i]);
}

Shape in_shape(const Conv2dGeometry& g) { return {g.n, g.h, g.w, g.c_in}; }
Shape out_shape(const Conv2dGeometry& g) { return {g.n, g.out_h(), g.out_w(), g.c_out}; }
Shape w_shape(const Conv2dGeometry& g) { return {g.c_out, g.c_in, g.kernel, g.kernel}; }

std::string describe(const Conv2dGeometry& g) {
  return fmt::format("n{} {}x{} {}->{} k{} s{} p{} trim {}", g.n, g.h, g.w, g.c_in, g.c_out,
                     g.kernel, g.stride, g.pad, g.trim);
}

void expect_matches_naive(Backend& be, const Conv2dGeometry& g) {
  SCOPED_TRACE(describe(g));
  std::mt19937 gen(11);
  Tensor x = random_tensor(in_shape(g), gen), w = random_tensor(w_shape(g), gen);
  Tensor dy = random_tensor(out_shape(g), gen);
  Tensor y_ref = Tensor::empty(out_shape(g)), dx_ref = Tensor::empty(in_shape(g)),
         dw_ref = Tensor::empty(w_shape(g));
  naive_conv(g, x, w, dy, y_ref, dx_ref, dw_ref);

  Tensor y = be.allocate(out_shape(g)), dx = be.allocate(in_shape(g)), dw = be.allocate(w_shape(g));
  be.conv2d_forward(g, x, w, y);
  be.conv2d_backward(g, x, w, dy, &dx, dw);
  EXPECT_CLOSE(y, y_ref, 1e-4);
  EXPECT_CLOSE(dx, dx_ref, 1e-4);
  EXPECT_CLOSE(dw, dw_ref, 1e-4);
}

// Central differences of <conv(x, w), r> against the backward pass's dx and dw; the outputs
// start as NaN, so a pass that leaves any element unwritten fails.
void expect_finite_difference_gradients(Backend& be, const Conv2dGeometry& g, unsigned seed) {
  std::mt19937 gen(seed);
  Tensor x = random_tensor(in_shape(g), gen), w = random_tensor(w_shape(g), gen);
  Tensor r = random_tensor(out_shape(g), gen);
  Tensor y = Tensor::empty(out_shape(g)), dx = Tensor::empty(in_shape(g)),
         dw = Tensor::empty(w_shape(g));
  for (Tensor* t : {&y, &dx, &dw}) be.fill(*t, std::numeric_limits<float>::quiet_NaN());
  auto loss = [&] {
    be.conv2d_forward(g, x, w, y);
    return dot(y, r);
  };
  be.conv2d_backward(g, x, w, r, &dx, dw);
  expect_gradient("conv dx", x, dx, loss);
  expect_gradient("conv dw", w, dw, loss);
}

TEST(CpuConv, MatchesNaiveOnResNetLayerShapes) {
  auto be = make_backend_under_test();
  const Conv2dGeometry shapes[] = {
      // torchvision stem (spatially shrunk), CIFAR stems
      {2, 32, 32, 3, 64, 7, 2, 3},
      {2, 16, 16, 3, 64, 3, 1, 1},
      {2, 16, 16, 3, 16, 3, 1, 1},
      // CIFAR ResNet-20 stages (16/32/64) with the stride-2 transitions
      {2, 8, 8, 16, 16, 3, 1, 1},
      {2, 8, 8, 16, 32, 3, 2, 1},
      {2, 8, 8, 16, 32, 1, 2, 0},
      // ResNet-18 basic blocks and downsamples
      {2, 8, 8, 64, 64, 3, 1, 1},
      {2, 8, 8, 64, 128, 3, 2, 1},
      {2, 8, 8, 64, 128, 1, 2, 0},
      {2, 4, 4, 512, 512, 3, 1, 1},
      // ResNet-50 bottleneck 1x1s and the stride-2 projection of the last stage
      {2, 4, 4, 256, 64, 1, 1, 0},
      {2, 4, 4, 64, 256, 1, 1, 0},
      {2, 4, 4, 1024, 2048, 1, 2, 0},
      // odd spatial size with stride 2 (7x7 -> 4x4 as in resnet's last stage at 224)
      {2, 7, 7, 32, 32, 3, 2, 1},
  };
  for (const auto& g : shapes) expect_matches_naive(*be, g);
}

TEST(CpuConv, FiniteDifferenceGradients) {
  auto be = make_backend_under_test();
  const Conv2dGeometry shapes[] = {
      {2, 5, 5, 3, 4, 3, 1, 1},   {2, 6, 6, 4, 5, 3, 2, 1}, {2, 4, 4, 6, 8, 1, 1, 0},
      {2, 6, 6, 4, 8, 1, 2, 0},   {1, 9, 9, 3, 4, 7, 2, 3}, {2, 6, 6, 16, 16, 3, 1, 1},
      {2, 5, 5, 16, 32, 3, 2, 1},
  };
  for (const auto& g : shapes) {
    SCOPED_TRACE(describe(g));
    expect_finite_difference_gradients(*be, g, 3);
  }
}

#ifndef DP_TEST_ON_CUDA  // cuDNN pads symmetrically: the CUDA backend refuses a trim
// A trimmed convolution (Conv2dGeometry::trim 1: `pad` zeros before the input, one fewer
// after; for a floor-mode pool that never reads an odd map's last row and column) in f32, on
// Winograd's shapes and on those the own kernels would take untrimmed (16 channels: thin
// Winograd; a 3x3 map: the GEMM lowering), all of which leave it to oneDNN's direct kernels:
// it matches the naive loop on its own geometry, its output is the whole map's less the last
// row and column, its gradients are the whole map's with that row and column of dy zero, and
// they pass a finite-difference check. A trim past the padding is refused.
TEST(CpuConv, TrimmedOutputIsTheWholeMapLessItsLastRowAndColumn) {
  const Conv2dGeometry shapes[] = {{2, 7, 7, 24, 64, 3, 1, 1, 1},
                                   {2, 15, 15, 64, 64, 3, 1, 1, 1},
                                   {2, 9, 9, 16, 16, 3, 1, 1, 1},
                                   {2, 3, 3, 32, 32, 3, 1, 1, 1}};
  for (bool winograd : {true, false}) {
    cpu::CpuConvOptions options;
    options.winograd = winograd;
    options.trim = true;
    cpu::CpuBackend be(0, options);
    // Networks ask for a trim only where the convolutions run direct (oneDNN's Winograd
    // miscomputes a trimmed backward-data); a trimmed geometry given anyway runs direct.
    EXPECT_EQ(be.supports_conv_trim(), !winograd);
    for (const Conv2dGeometry& g : shapes) {
      SCOPED_TRACE(describe(g) + (winograd ? " winograd" : " direct"));
      expect_matches_naive(be, g);
      Conv2dGeometry whole = g;
      whole.trim = 0;
      ASSERT_EQ(g.out_h(), whole.out_h() - 1);
      std::mt19937 gen(13);
      Tensor x = random_tensor(in_shape(g), gen), w = random_tensor(w_shape(g), gen);
      Tensor dy = random_tensor(out_shape(g), gen);
      // Where element i of a trimmed NHWC output sits in the whole map's.
      const auto in_whole = [&](int64_t i) {
        const int64_t c = i % g.c_out, px = i / g.c_out, ox = px % g.out_w(),
                      oy = px / g.out_w() % g.out_h(), n = px / (g.out_w() * g.out_h());
        return ((n * whole.out_h() + oy) * whole.out_w() + ox) * g.c_out + c;
      };
      Tensor dy_whole = Tensor::zeros(out_shape(whole));  // dy, and 0 in the last row and column
      for (int64_t i = 0; i < dy.numel(); ++i) dy_whole.data()[in_whole(i)] = dy.data()[i];
      Tensor y, dx, dw, y_whole, dx_whole, dw_whole;
      be.conv2d_forward(g, x, w, y);
      be.conv2d_backward(g, x, w, dy, &dx, dw);
      be.conv2d_forward(whole, x, w, y_whole);
      be.conv2d_backward(whole, x, w, dy_whole, &dx_whole, dw_whole);
      const Tensor y_nhwc = in_nhwc_order(y), y_whole_nhwc = in_nhwc_order(y_whole);
      Tensor y_cropped = Tensor::empty(out_shape(g));
      for (int64_t i = 0; i < y_cropped.numel(); ++i)
        y_cropped.data()[i] = y_whole_nhwc.data()[in_whole(i)];
      EXPECT_CLOSE(y_nhwc, y_cropped, 1e-5);
      EXPECT_CLOSE(in_nhwc_order(dx), in_nhwc_order(dx_whole), 1e-5);
      EXPECT_CLOSE(dw, dw_whole, 1e-5);
    }
    const Conv2dGeometry small{2, 5, 5, 3, 4, 3, 1, 1, 1};
    SCOPED_TRACE(describe(small));
    expect_finite_difference_gradients(be, small, 3);
    const Conv2dGeometry past_padding{2, 5, 5, 3, 4, 3, 1, 0, 1};
    Tensor x = Tensor::zeros(in_shape(small)), w = Tensor::zeros(w_shape(small)), out;
    EXPECT_THROW(be.conv2d_forward(past_padding, x, w, out), Error);
  }
}
#endif

TEST(CpuConv, BackwardWithoutInputGradient) {
  auto be = make_backend_under_test();
  Conv2dGeometry g{2, 8, 8, 3, 16, 3, 1, 1};
  std::mt19937 gen(5);
  Tensor x = random_tensor(in_shape(g), gen), w = random_tensor(w_shape(g), gen);
  Tensor dy = random_tensor(out_shape(g), gen);
  Tensor y_ref = Tensor::empty(out_shape(g)), dx_ref = Tensor::empty(in_shape(g)),
         dw_ref = Tensor::empty(w_shape(g));
  naive_conv(g, x, w, dy, y_ref, dx_ref, dw_ref);
  Tensor dw;
  be->conv2d_backward(g, x, w, dy, nullptr, dw);
  EXPECT_CLOSE(dw, dw_ref, 1e-4);
}

#ifndef DP_TEST_ON_CUDA  // the CUDA twin is in test_cuda_vs_cpu.cpp
TEST(CpuConv, RepeatedShapesReuseTheCache) {
  cpu::CpuBackend be(0);
  Conv2dGeometry g{4, 8, 8, 16, 32, 3, 1, 1};
  std::mt19937 gen(9);
  Tensor x = random_tensor(in_shape(g), gen), w = random_tensor(w_shape(g), gen);
  Tensor dy = random_tensor(out_shape(g), gen);
  Tensor y1, y2, dx1, dx2, dw1, dw2;
  be.conv2d_forward(g, x, w, y1);
  be.conv2d_backward(g, x, w, dy, &dx1, dw1);
  const size_t entries = be.cached_primitive_entries();
  // forward, backward-data, backward-weights, and where the forward wrote 32 channels blocked
  // (activation_layout.h), the reorder of this test's NHWC dy into that layout
  EXPECT_EQ(entries, y1.layout() == Layout::nchw16c ? 4u : 3u);
  be.conv2d_forward(g, x, w, y2);
  be.conv2d_backward(g, x, w, dy, &dx2, dw2);
  EXPECT_EQ(be.cached_primitive_entries(), entries);
  EXPECT_EQ(relative_max_error(y2, y1), 0.0);
  EXPECT_EQ(relative_max_error(dx2, dx1), 0.0);
  EXPECT_EQ(relative_max_error(dw2, dw1), 0.0);

  // New weights through the same cached primitive are reordered afresh.
  Tensor w2 = random_tensor(w_shape(g), gen);
  Tensor y_ref = Tensor::empty(out_shape(g)), dx_ref = Tensor::empty(in_shape(g)),
         dw_ref = Tensor::empty(w_shape(g));
  naive_conv(g, x, w2, dy, y_ref, dx_ref, dw_ref);
  be.conv2d_forward(g, x, w2, y2);
  be.conv2d_backward(g, x, w2, dy, &dx2, dw2);
  EXPECT_CLOSE(y2, y_ref, 1e-4);
  EXPECT_CLOSE(dx2, dx_ref, 1e-4);

  // A different shape afterwards builds new entries and is still right.
  Conv2dGeometry g2{2, 6, 6, 16, 8, 3, 2, 1};  // not GEMM-lowered: builds primitives
  expect_matches_naive(be, g2);
  EXPECT_EQ(be.cached_primitive_entries(), entries + 3);
}
#endif

#ifndef DP_TEST_ON_CUDA
// The Winograd path (default; DPTRAIN_CPU_CONV=direct turns it off): 3x3 stride-1 layers
// with enough channels run Winograd on blocked activations, the rest fall back to direct; all
// must match the naive loop. Winograd's transforms round differently from direct convolution, so a
// result that is bit-identical to the direct backend would mean it never ran. 24 input channels
// (airbench94's whitened input, NHWC) run Winograd padded to 32: the pad must read as zero in
// forward and be dropped from both gradients.
TEST(CpuConv, WinogradMatchesNaiveAndDiffersFromDirectByRounding) {
  cpu::CpuBackend wino(0, {true, false}), direct(0, {false, false});
  ASSERT_NE(wino.name().find("Winograd"), std::string::npos);
  const Conv2dGeometry winograd_shapes[] = {
      {2, 16, 16, 64, 64, 3, 1, 1}, {2, 8, 8, 128, 64, 3, 1, 1},  {2, 4, 4, 256, 256, 3, 1, 1},
      {2, 3, 3, 64, 64, 3, 1, 1},   {2, 15, 15, 24, 64, 3, 1, 1}, {3, 9, 9, 40, 32, 3, 1, 1}};
  for (const Conv2dGeometry& g : winograd_shapes) {
    expect_matches_naive(wino, g);
    SCOPED_TRACE(describe(g));
    std::mt19937 gen(5);
    Tensor x = random_tensor(in_shape(g), gen), w = random_tensor(w_shape(g), gen);
    Tensor y_w, y_d;
    wino.conv2d_forward(g, x, w, y_w);
    direct.conv2d_forward(g, x, w, y_d);
    EXPECT_GT(relative_max_error(y_w, y_d), 0.0);
  }
  // Not eligible (stride 2, thin, 1x1, a 2x2 map): direct, or the 2x2 map's GEMM lowering,
  // inside the Winograd backend.
  for (const Conv2dGeometry& g :
       {Conv2dGeometry{2, 8, 8, 64, 64, 3, 2, 1}, Conv2dGeometry{2, 16, 16, 32, 32, 3, 1, 1},
        Conv2dGeometry{2, 8, 8, 64, 32, 1, 1, 0}, Conv2dGeometry{2, 2, 2, 64, 64, 3, 1, 1}})
    expect_matches_naive(wino, g);
}
#endif

#ifndef DP_TEST_ON_CUDA
// Whether oneDNN 2.6 has only a reference bf16 kernel for this convolution's backward (data
// and weights in one primitive), so that the backend runs it in f32: airbench94's 2x2
// whitening conv of the 3 image channels, on CPUs without AMX (measured on an AMD EPYC).
bool whitening_backward_in_f32(const Conv2dGeometry& g) {
  return g.c_in == 3 && g.kernel == 2 && cpu_bf16_convolution_layout() == Layout::nchw16c;
}

// --precision bf16 on the CPU: every convolution reads its input, weights and output
// gradient rounded to bf16 once and accumulates in f32. So (1) the results equal the naive
// loop in double on the rounded operands up to f32 summation, (2) rounding the operands
// before the call changes nothing, bit for bit, and (3) they are measurably not f32's; except
// a pass the backend counts as run in f32 (no optimised bf16 kernel on this CPU: the whitening
// conv's backward without AMX), whose results must then be f32's. On NHWC and blocked
// activations, on airbench94's shapes (the 2x2 whitening conv of 3 channels, 24 whitened
// channels, 64 and 256 wide layers down to 3x3 maps) and a strided and a 1x1 one.
TEST(CpuConv, Bf16ReadsOperandsRoundedOnceAndAccumulatesInF32) {
  if (!cpu_has_native_bf16())
    GTEST_SKIP() << "this CPU has neither AVX512-BF16 nor AMX: no bf16 convolutions here";
  const Conv2dGeometry shapes[] = {{2, 32, 32, 3, 24, 2, 1, 0},    {2, 15, 15, 24, 64, 3, 1, 1},
                                   {2, 7, 7, 64, 256, 3, 1, 1},    {2, 3, 3, 256, 256, 3, 1, 1},
                                   {2, 8, 8, 32, 64, 3, 2, 1},     {2, 8, 8, 64, 32, 1, 1, 0},
                                   {2, 15, 15, 24, 64, 3, 1, 1, 1}};
  for (bool blocked : {false, true}) {
    cpu::CpuConvOptions options;
    options.bf16 = true;
    options.blocked_activations = blocked;
    cpu::CpuBackend be(0, options);
    ASSERT_NE(be.name().find("bf16 convolutions"), std::string::npos) << be.name();
    for (const Conv2dGeometry& g : shapes) {
      SCOPED_TRACE(describe(g) + (blocked ? " blocked" : " NHWC"));
      std::mt19937 gen(3);
      Tensor x = random_tensor(in_shape(g), gen), w = random_tensor(w_shape(g), gen);
      Tensor dy = random_tensor(out_shape(g), gen);
      Tensor xr = rounded_to_bf16(x), wr = rounded_to_bf16(w), dyr = rounded_to_bf16(dy);
      Tensor y_ref = Tensor::empty(out_shape(g)), dx_ref = Tensor::empty(in_shape(g)),
             dw_ref = Tensor::empty(w_shape(g));
      naive_conv(g, xr, wr, dyr, y_ref, dx_ref, dw_ref);
      // The input in the layout this backend keeps it in (blocked where the channels allow).
      const auto as_kept = [&](const Tensor& t) {
        const bool block = blocked && g.c_in % 16 == 0 && g.c_in >= 32;
        return block ? in_blocked_order(t) : copy_of(t);
      };
      const Tensor xk = as_kept(x), xrk = as_kept(xr);
      Tensor y, dx, dw, y_r, dx_r, dw_r, dw_only, dw_only_r;
      const size_t fallbacks = be.conv_bf16_passes_in_f32();
      be.conv2d_forward(g, xk, w, y);
      const size_t after_forward = be.conv_bf16_passes_in_f32();
      be.conv2d_backward(g, xk, w,
                         be.conv_output_layout(g) == Layout::nchw16c ? in_blocked_order(dy) : dy,
                         &dx, dw);
      // A pass oneDNN has only a reference bf16 kernel for on this CPU runs in f32 (and says so
      // in the log): its results are then f32's (the whitening conv's backward without AMX).
      const bool forward_f32 = after_forward > fallbacks;
      const bool backward_f32 = be.conv_bf16_passes_in_f32() > after_forward;
      be.conv2d_forward(g, xrk, wr, y_r);
      be.conv2d_backward(g, xrk, wr, dyr, &dx_r, dw_r);
      const size_t before_alone = be.conv_bf16_passes_in_f32();
      be.conv2d_backward(g, xk, w, dy, nullptr, dw_only);  // its own cache entry
      const bool alone_f32 = be.conv_bf16_passes_in_f32() > before_alone;
      // The one fallback the README names: the whitening conv's backward (data and weights
      // together) where the CPU has no AMX; every other pass has an optimised bf16 kernel.
      EXPECT_FALSE(forward_f32);
      EXPECT_EQ(backward_f32, whitening_backward_in_f32(g));
      EXPECT_FALSE(alone_f32);
      be.conv2d_backward(g, xrk, wr, dyr, nullptr, dw_only_r);
      Tensor y_f32 = Tensor::empty(out_shape(g)), dx_f32 = Tensor::empty(in_shape(g)),
             dw_f32 = Tensor::empty(w_shape(g));
      naive_conv(g, x, w, dy, y_f32, dx_f32, dw_f32);
      const auto expect_pass = [](const char* pass, bool in_f32, const Tensor& got,
                                  const Tensor& from_rounded, const Tensor& bf16_ref,
                                  const Tensor& f32_ref) {
        SCOPED_TRACE(pass);
        if (in_f32) {
          EXPECT_CLOSE(got, f32_ref, 1e-5);
          return;
        }
        EXPECT_CLOSE(got, bf16_ref, 1e-5);
        EXPECT_EQ(relative_max_error(got, from_rounded), 0.0) << "operands rounded again";
        EXPECT_GT(relative_max_error(got, f32_ref), 1e-4) << "ran in f32 unannounced";
      };
      expect_pass("forward", forward_f32, y, y_r, y_ref, y_f32);
      expect_pass("backward-data", backward_f32, dx, dx_r, dx_ref, dx_f32);
      expect_pass("backward-weights", backward_f32, dw, dw_r, dw_ref, dw_f32);
      expect_pass("backward-weights alone", alone_f32, dw_only, dw_only_r, dw_ref, dw_f32);
    }
  }
}
#endif

#ifndef DP_TEST_ON_CUDA
// With bf16 activations (airbench94 under --precision bf16) the convolution reads a bf16 input
// (or the f32 images), writes a bf16 output and takes and gives bf16 gradients (the images'
// too: the layer allocates every activation gradient bf16); each is the f32 accumulation of the
// bf16 operands rounded once, and the weight gradient stays f32. Every backward route is
// taken: dx as a forward convolution (same padding; trimmed outputs: padded more after), by
// oneDNN's primitive (pad 0), and dw by oneDNN's primitive and, where the GEMM applies (64+
// input channels with AMX, 256+ without it), as a GEMM; on NHWC and on blocked activations.
TEST(CpuConv, Bf16ActivationsAreTheF32ResultRoundedOnce) {
  if (!cpu_has_native_bf16())
    GTEST_SKIP() << "this CPU has neither AVX512-BF16 nor AMX: no bf16 convolutions here";
  const Conv2dGeometry shapes[] = {{2, 32, 32, 3, 24, 2, 1, 0},
                                   {2, 15, 15, 24, 64, 3, 1, 1},
                                   {2, 7, 7, 64, 256, 3, 1, 1},
                                   {2, 3, 3, 256, 256, 3, 1, 1},
                                   {2, 7, 7, 256, 64, 3, 1, 0},
                                   // trimmed as airbench's block convs before their pools
                                   {2, 15, 15, 24, 64, 3, 1, 1, 1},
                                   {2, 15, 15, 64, 256, 3, 1, 1, 1},
                                   {2, 7, 7, 256, 256, 3, 1, 1, 1}};
  // NHWC, and blocked (nChw16c) as --precision bf16 keeps them on CPUs without AMX.
  for (bool blocked : {false, true}) {
    cpu::CpuConvOptions options;
    options.bf16 = options.bf16_activations = true;
    options.blocked_activations = blocked;
    cpu::CpuBackend be(0, options);
    ASSERT_EQ(be.activation_dtype(), DType::bf16);
    for (const Conv2dGeometry& g : shapes) {
      SCOPED_TRACE(describe(g) + (blocked ? " blocked" : " NHWC"));
      std::mt19937 gen(5);
      // The whitening conv reads the f32 images; the others read a bf16 activation, each in
      // the layout the backend keeps it in.
      const bool image_input = g.c_in == 3;
      const Layout x_layout = cpu::preferred_layout(blocked, g.c_in, g.h, g.w);
      const Layout y_layout = be.conv_output_layout(g);
      EXPECT_EQ(y_layout == Layout::nchw16c, blocked && g.c_out % 16 == 0 && g.c_out >= 32);
      Tensor x = rounded_to_bf16(random_tensor(in_shape(g), gen));
      Tensor w = random_tensor(w_shape(g), gen);
      Tensor dy = rounded_to_bf16(random_tensor(out_shape(g), gen));
      Tensor y_ref = Tensor::empty(out_shape(g)), dx_ref = Tensor::empty(in_shape(g)),
             dw_ref = Tensor::empty(w_shape(g));
      naive_conv(g, x, rounded_to_bf16(w), dy, y_ref, dx_ref, dw_ref);
      const Tensor x_in = image_input ? x : as_bf16_in(x, x_layout);
      Tensor y = be.allocate(out_shape(g), DType::bf16), dx = be.allocate(in_shape(g), DType::bf16);
      Tensor dw;
      be.conv2d_forward(g, x_in, w, y);
      EXPECT_EQ(y.layout(), y_layout);
      expect_rounded_from(be, y, y_ref, "y", /*long_sums=*/true);
      const size_t passes_in_f32 = be.conv_bf16_passes_in_f32();
      be.conv2d_backward(g, x_in, w, as_bf16_in(dy, y_layout), &dx, dw);
      EXPECT_EQ(dx.layout(), x_in.layout());
      EXPECT_EQ(dw.dtype(), DType::f32);
      EXPECT_CLOSE(dw, dw_ref, 1e-5);
      const bool backward_f32 = be.conv_bf16_passes_in_f32() > passes_in_f32;
      EXPECT_EQ(backward_f32, whitening_backward_in_f32(g));
      if (!backward_f32) {
        expect_rounded_from(be, dx, dx_ref, "dx", /*long_sums=*/true);
      } else {  // no optimised bf16 kernel here (logged): f32's dx, from the weights unrounded
        Tensor y_f32 = Tensor::empty(out_shape(g)), dx_f32 = Tensor::empty(in_shape(g)),
               dw_f32 = Tensor::empty(w_shape(g));
        naive_conv(g, x, w, dy, y_f32, dx_f32, dw_f32);
        expect_rounded_from(be, dx, dx_f32, "dx (f32 backward)", /*long_sums=*/true);
      }
    }
  }
}
#endif

#ifndef DP_TEST_ON_CUDA
// The weight gradient of bf16 layers of 64+ input channels as im2col + GEMM
// (weight_grad_gemm.h), summed over chunks of pixels (whole blocks of 32, the last one
// zero-padded): the 3x3 map's 36 pixels take one full chunk and 4 pixels of a second, the 7x7
// map's 98 three full ones and 2 pixels, the trimmed 7x7 map's 6x6 outputs (72 pixels) two and
// 8, their windows reading padding before the map but none after it; airbench94's 64-channel
// layers (15x15, and 15x15 trimmed to 14x14 outputs) 14 and 12 full chunks and 2 and 8 pixels;
// in chunks of 96 the last chunk is shorter than the others (98 pixels: 96 + 32, the 32 a
// padded block; 36: one chunk of 64, less than 96). Each equals the naive loop on the same bf16
// values, from NHWC and from blocked operands.
TEST(CpuConv, Bf16WeightGradientAsGemmSumsItsChunks) {
  if (!cpu::WeightGradGemm::available())
    GTEST_SKIP() << "this CPU has no bf16 matmul: the weight gradient GEMM is not used here";
  cpu::DnnlContext ctx;
  cpu::WeightGradGemm in_32s(ctx, 32), in_96s(ctx, 96);
  for (const Conv2dGeometry& g :
       {Conv2dGeometry{4, 3, 3, 256, 64, 3, 1, 1}, Conv2dGeometry{2, 7, 7, 256, 32, 3, 1, 1},
        Conv2dGeometry{2, 7, 7, 256, 32, 3, 1, 1, 1}, Conv2dGeometry{2, 15, 15, 64, 64, 3, 1, 1},
        Conv2dGeometry{2, 15, 15, 64, 256, 3, 1, 1, 1}}) {
    std::mt19937 gen(9);
    Tensor x = rounded_to_bf16(random_tensor(in_shape(g), gen));
    Tensor dy = rounded_to_bf16(random_tensor(out_shape(g), gen));
    Tensor w = random_tensor(w_shape(g), gen);
    Tensor y_ref = Tensor::empty(out_shape(g)), dx_ref = Tensor::empty(in_shape(g)),
           dw_ref = Tensor::empty(w_shape(g));
    naive_conv(g, x, w, dy, y_ref, dx_ref, dw_ref);
    for (bool blocked : {false, true}) {
      SCOPED_TRACE(describe(g) + (blocked ? " blocked" : " NHWC"));
      const auto kept = [&](const Tensor& t) {
        Tensor b = as_bf16(blocked ? in_blocked_order(t) : t);
        b.set_layout(blocked ? Layout::nchw16c : Layout::nhwc);
        return b;
      };
      const Tensor xb = kept(x), dyb = kept(dy);
      ASSERT_TRUE(cpu::WeightGradGemm::computes(g, xb, dyb));
      EXPECT_FALSE(cpu::WeightGradGemm::computes(g, x, dy)) << "f32 operands";
      for (cpu::WeightGradGemm* gemm : {&in_32s, &in_96s}) {
        Tensor dw;
        gemm->compute(g, xb, dyb, dw);
        EXPECT_CLOSE(dw, dw_ref, 1e-5);
      }
    }
    Tensor dy_blocked = as_bf16(in_blocked_order(dy));
    dy_blocked.set_layout(Layout::nchw16c);
    EXPECT_FALSE(cpu::WeightGradGemm::computes(g, as_bf16(x), dy_blocked)) << "mixed layouts";
  }
  // Routed here from 64 input channels with AMX, from 256 without (where 64 was not measured
  // faster than oneDNN's kernel); 32 never.
  const bool amx = cpu::effective_isa_includes(dnnl::cpu_isa::avx512_core_amx);
  EXPECT_EQ(cpu::WeightGradGemm::min_input_channels(), amx ? 64 : 256);
  EXPECT_EQ(cpu::WeightGradGemm::default_chunk_pixels(), amx ? 1024 : 4096);
  for (int64_t c_in : {32, 64, 128, 256}) {
    const Conv2dGeometry g{2, 7, 7, c_in, 64, 3, 1, 1};
    EXPECT_EQ(cpu::WeightGradGemm::applies(g, Tensor::empty({2, 7, 7, c_in}, DType::bf16),
                                           Tensor::empty({2, 7, 7, 64}, DType::bf16)),
              c_in >= (amx ? 64 : 256))
        << c_in << " input channels";
  }
  EXPECT_FALSE(cpu::WeightGradGemm::applies({2, 7, 7, 288, 64, 3, 1, 1},
                                            Tensor::empty({2, 7, 7, 288}, DType::bf16),
                                            Tensor::empty({2, 7, 7, 64}, DType::bf16)))
      << "288 input channels: not whole 64-column blocks of col";
}
#endif

#ifndef DP_TEST_ON_CUDA
// The 16-channel 3x3 layers (ResNet-20's first stage) run on our own Winograd kernel
// (thin_winograd.h), forward and both backward passes. It must match the naive loop on full
// tiles, on maps that end in partial tiles (9x10), on rows of more than one block of tiles (37
// wide) and on a batch long enough that backward-weights moves its float sums into double ones
// mid-way (20 images of 4 tile rows); write every output element (the outputs start as NaN); and
// really run: its rounding differs from the oneDNN direct kernel the backend uses with it off.
Tensor nan_tensor(const Shape& shape) {
  Tensor t = Tensor::empty(shape);
  std::fill(t.data(), t.data() + t.numel(), std::numeric_limits<float>::quiet_NaN());
  return t;
}

TEST(CpuConv, ThinWinogradMatchesNaiveAt16Channels) {
  const Conv2dGeometry shapes[] = {{2, 32, 32, 16, 16, 3, 1, 1},
                                   {3, 9, 10, 16, 16, 3, 1, 1},
                                   {2, 8, 37, 16, 16, 3, 1, 1},
                                   {20, 16, 16, 16, 16, 3, 1, 1}};
  if (!cpu::simd::cpu_has_avx512f())
    GTEST_SKIP() << "this CPU has no AVX-512F: the 16-channel Winograd kernel cannot run here";
  for (const Conv2dGeometry& g : shapes) ASSERT_TRUE(cpu::ThinWinograd::applies(g)) << g.h;
  cpu::CpuConvOptions on, off;
  on.winograd = off.winograd = true;
  on.thin_winograd = true;
  off.thin_winograd = false;
  cpu::CpuBackend wino(0, on), onednn(0, off);
  ASSERT_NE(wino.name().find("own kernel at 16 channels"), std::string::npos);
  for (const Conv2dGeometry& g : shapes) {
    SCOPED_TRACE(describe(g));
    ASSERT_TRUE(wino.conv_runs_thin_winograd(g));
    ASSERT_FALSE(onednn.conv_runs_thin_winograd(g));
    std::mt19937 gen(3);
    Tensor x = random_tensor(in_shape(g), gen), w = random_tensor(w_shape(g), gen),
           dy = random_tensor(out_shape(g), gen);
    Tensor y_ref = Tensor::empty(out_shape(g)), dx_ref = Tensor::empty(in_shape(g)),
           dw_ref = Tensor::empty(w_shape(g));
    naive_conv(g, x, w, dy, y_ref, dx_ref, dw_ref);
    Tensor y = nan_tensor(out_shape(g)), dx = nan_tensor(in_shape(g)), dw = nan_tensor(w_shape(g));
    wino.conv2d_forward(g, x, w, y);
    wino.conv2d_backward(g, x, w, dy, &dx, dw);
    EXPECT_CLOSE(y, y_ref, 1e-4);
    EXPECT_CLOSE(dx, dx_ref, 1e-4);
    EXPECT_CLOSE(dw, dw_ref, 1e-4);

    Tensor y_direct, dx_direct, dw_direct;
    onednn.conv2d_forward(g, x, w, y_direct);
    onednn.conv2d_backward(g, x, w, dy, &dx_direct, dw_direct);
    EXPECT_GT(relative_max_error(y, y_direct), 0.0);
    EXPECT_GT(relative_max_error(dx, dx_direct), 0.0);
    EXPECT_GT(relative_max_error(dw, dw_direct), 0.0);
  }
  // Everything else stays on oneDNN: other channel counts, stride 2, 1x1, small maps.
  for (const Conv2dGeometry& g :
       {Conv2dGeometry{2, 32, 32, 16, 32, 3, 1, 1}, Conv2dGeometry{2, 32, 32, 32, 16, 3, 1, 1},
        Conv2dGeometry{2, 32, 32, 16, 16, 3, 2, 1}, Conv2dGeometry{2, 32, 32, 16, 16, 1, 1, 0},
        Conv2dGeometry{2, 7, 7, 16, 16, 3, 1, 1}})
    EXPECT_FALSE(wino.conv_runs_thin_winograd(g)) << describe(g);
  // At 16 channels NHWC and nChw16c are the same bytes: dx carries x's layout tag.
  const Conv2dGeometry g = shapes[0];
  std::mt19937 gen(4);
  Tensor x = random_tensor(in_shape(g), gen), w = random_tensor(w_shape(g), gen),
         dy = random_tensor(out_shape(g), gen), dx, dw;
  x.set_layout(Layout::nchw16c);
  wino.conv2d_backward(g, x, w, dy, &dx, dw);
  EXPECT_EQ(dx.layout(), Layout::nchw16c);
}
#endif

#ifndef DP_TEST_ON_CUDA
// Small output maps run as one GEMM over the batch (conv_as_gemm.h). The policy lowers
// ResNet-50's last two stages at 32x32 and leaves larger maps to oneDNN; every lowered kind
// (pointwise with stride 1 and 2, dense 3x3 on 1x1 and 2x2 maps, dense stride 2) matches the
// naive loop, overwrites whatever its outputs held, and passes a finite-difference check.
TEST(CpuConv, SmallOutputMapsRunAsOneGemm) {
  using cpu::conv_lowering_for;
  using cpu::ConvLowering;
  EXPECT_EQ(conv_lowering_for({128, 1, 1, 512, 2048, 1, 1, 0}), ConvLowering::pointwise);
  EXPECT_EQ(conv_lowering_for({128, 2, 2, 1024, 2048, 1, 2, 0}), ConvLowering::pointwise);
  EXPECT_EQ(conv_lowering_for({128, 4, 4, 128, 512, 1, 1, 0}), ConvLowering::pointwise);
  EXPECT_EQ(conv_lowering_for({128, 8, 8, 256, 512, 1, 2, 0}), ConvLowering::pointwise);
  EXPECT_EQ(conv_lowering_for({128, 8, 8, 64, 256, 1, 1, 0}), ConvLowering::none);
  EXPECT_EQ(conv_lowering_for({128, 1, 1, 512, 512, 3, 1, 1}), ConvLowering::dense);
  EXPECT_EQ(conv_lowering_for({128, 2, 2, 256, 256, 3, 1, 1}), ConvLowering::dense);
  EXPECT_EQ(conv_lowering_for({128, 2, 2, 512, 512, 3, 2, 1}), ConvLowering::dense);
  EXPECT_EQ(conv_lowering_for({128, 4, 4, 128, 128, 3, 1, 1}), ConvLowering::none);
  EXPECT_EQ(conv_lowering_for({128, 4, 4, 256, 256, 3, 2, 1}), ConvLowering::none);
  EXPECT_EQ(conv_lowering_for({128, 32, 32, 3, 64, 7, 2, 3}), ConvLowering::none);
  EXPECT_EQ(conv_lowering_for({128, 1, 1, 8, 8, 1, 1, 1}), ConvLowering::none);  // padded 1x1

  cpu::CpuConvOptions lowered;
  lowered.winograd = false;
  lowered.gemm_small_maps = true;
  cpu::CpuBackend be(0, lowered);
  const Conv2dGeometry shapes[] = {
      {3, 1, 1, 24, 40, 1, 1, 0}, {3, 2, 2, 24, 40, 1, 2, 0}, {3, 4, 4, 16, 24, 1, 1, 0},
      {3, 5, 5, 16, 8, 1, 2, 0},  {3, 1, 1, 24, 40, 3, 1, 1}, {3, 2, 2, 16, 24, 3, 1, 1},
      {3, 2, 2, 16, 24, 3, 2, 1}, {3, 2, 2, 40, 16, 3, 2, 1},
  };
  for (const Conv2dGeometry& g : shapes) {
    SCOPED_TRACE(describe(g));
    ASSERT_TRUE(be.conv_runs_as_gemm(g));
    expect_matches_naive(be, g);
    expect_finite_difference_gradients(be, g, 17);
  }
}
#endif

// Every backend refuses, naming the operand, a bad geometry and an input, weight or output
// gradient that does not match it (both share check_conv_operands).
TEST(CpuConv, ShapeMismatchThrows) {
  auto be = make_backend_under_test();
  const Conv2dGeometry g{2, 8, 8, 3, 16, 3, 1, 1};
  Tensor x = Tensor::zeros({2, 8, 8, 3}), w = Tensor::zeros(w_shape(g)), y, dx, dw;
  Tensor other_x = Tensor::zeros({2, 8, 8, 4}), other_w = Tensor::zeros({16, 3, 1, 1});
  Tensor dy = Tensor::zeros({2, 8, 8, 16}), other_dy = Tensor::zeros({2, 4, 4, 16});
  expect_error_mentioning([&] { be->conv2d_forward(g, other_x, w, y); }, "conv input");
  expect_error_mentioning([&] { be->conv2d_forward(g, x, other_w, y); }, "conv weight");
  expect_error_mentioning([&] { be->conv2d_backward(g, x, w, other_dy, &dx, dw); },
                          "conv output gradient");
  Conv2dGeometry no_output = g;
  no_output.kernel = 11;  // larger than the padded 8x8 input
  expect_error_mentioning(
      [&] { be->conv2d_forward(no_output, x, Tensor::zeros(w_shape(no_output)), y); },
      "bad conv geometry");
}

}  // namespace
}  // namespace dp::test
