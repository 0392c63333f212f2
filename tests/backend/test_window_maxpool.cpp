// Max pooling over non-overlapping windows on the CPU backend's own AVX-512 loops
// (cpu/window_maxpool.h): every output, winner and gradient against a naive loop with PyTorch's
// rule (the first maximum in row-major window order wins; a NaN wins over every number), with
// many ties, in f32 and bf16, NHWC and nChw16c, directly and through the backend's routing.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <limits>

#include "backend/cpu/cpu_backend.h"
#include "backend/cpu/window_maxpool.h"
#include "bf16_host.h"
#include "test_util.h"

namespace dp::test {
namespace {

bool has_avx512bw() { return __builtin_cpu_supports("avx512bw"); }

// Quarter steps in [-1, 1] (exact in bf16, so ties are everywhere) and one NaN in 61.
Tensor tied_values(const Shape& shape, std::mt19937& gen) {
  Tensor t = Tensor::empty(shape);
  std::uniform_int_distribution<int> step(-4, 4), nan(0, 60);
  for (int64_t i = 0; i < t.numel(); ++i)
    t.data()[i] = nan(gen) == 0 ? std::numeric_limits<float>::quiet_NaN() : 0.25f * step(gen);
  return t;
}

// PyTorch's max pool (NHWC, stride = kernel, no padding): y and each output's winning input.
Tensor naive_window_maxpool(const PoolGeometry& g, const Tensor& x, std::vector<int64_t>& winner) {
  Tensor y = Tensor::empty({g.n, g.out_h(), g.out_w(), g.c});
  winner.assign(y.numel(), -1);
  const float* in = x.data();
  for (int64_t o = 0; o < y.numel(); ++o) {
    const int64_t c = o % g.c, ow = o / g.c % g.out_w(), oh = o / g.c / g.out_w() % g.out_h(),
                  n = o / g.c / g.out_w() / g.out_h();
    for (int64_t kh = 0; kh < g.kernel; ++kh)
      for (int64_t kw = 0; kw < g.kernel; ++kw) {
        const int64_t i = ((n * g.h + oh * g.kernel + kh) * g.w + ow * g.kernel + kw) * g.c + c;
        if (winner[o] < 0 || in[i] > in[winner[o]] || std::isnan(in[i])) winner[o] = i;
      }
    y.data()[o] = in[winner[o]];
  }
  return y;
}

// Tied input values, the naive y, a bf16-exact output gradient and the naive dx (dy at each
// window's winner, 0 elsewhere), all NHWC f32.
struct NaiveCase {
  Tensor x, y, dy, dx;
};
NaiveCase naive_case(const PoolGeometry& g, std::mt19937& gen) {
  NaiveCase c;
  c.x = tied_values({g.n, g.h, g.w, g.c}, gen);
  std::vector<int64_t> winner;
  c.y = naive_window_maxpool(g, c.x, winner);
  c.dy = rounded_to_bf16(random_tensor(c.y.shape(), gen));
  c.dx = Tensor::zeros(c.x.shape());
  for (int64_t o = 0; o < c.dy.numel(); ++o) c.dx.data()[winner[o]] = c.dy.data()[o];
  return c;
}

// An NHWC f32 host tensor in `layout` and `dtype` (bf16: rounded), and back.
Tensor prepared(const Tensor& nhwc, Layout layout, DType dtype) {
  Tensor t = layout == Layout::nchw16c ? in_blocked_order(nhwc) : copy_of(nhwc);
  if (dtype == DType::f32) return t;
  Tensor b = as_bf16(t);
  b.set_layout(layout);
  return b;
}
Tensor as_nhwc_f32(const Tensor& t) {
  Tensor f = t;
  if (t.dtype() == DType::bf16) {
    f = Tensor::empty(t.shape());
    for (int64_t i = 0; i < t.numel(); ++i) f.data()[i] = bf16_value(t.data<uint16_t>()[i]);
    f.set_layout(t.layout());
  }
  return in_nhwc_order(f);
}

// Bit for bit, NaN as NaN.
void expect_same_values(const Tensor& got, const Tensor& want, const std::string& what) {
  ASSERT_EQ(got.shape(), want.shape()) << what;
  int64_t wrong = 0;
  for (int64_t i = 0; i < got.numel(); ++i) {
    const float a = got.data()[i], b = want.data()[i];
    if (!(std::bit_cast<uint32_t>(a) == std::bit_cast<uint32_t>(b) ||
          (std::isnan(a) && std::isnan(b))) &&
        wrong++ < 3)
      ADD_FAILURE() << what << " element " << i << ": " << a << " want " << b;
  }
  EXPECT_EQ(wrong, 0) << what;
}

const PoolGeometry kShapes[] = {
    {3, 31, 31, 64, 2, 2, 0},  // airbench's first pool: 31 -> 15, the last row and column dropped
    {2, 15, 15, 32, 2, 2, 0},
    {2, 7, 7, 16, 3, 3, 0},   // 7 -> 2, two rows and columns dropped
    {4, 3, 3, 256, 3, 3, 0},  // airbench's last pool: the whole map
};

TEST(WindowMaxPool, TakesAirbenchsPoolsOnly) {
  if (!has_avx512bw()) GTEST_SKIP() << "this CPU lacks AVX-512BW: oneDNN pools everything";
  for (const PoolGeometry& g : kShapes) EXPECT_TRUE(cpu::window_maxpool_handles(g, DType::bf16));
  EXPECT_FALSE(cpu::window_maxpool_handles({2, 8, 8, 64, 3, 2, 1}, DType::f32));  // ResNet stem
  EXPECT_FALSE(cpu::window_maxpool_handles({2, 8, 8, 8, 2, 2, 0}, DType::f32));   // 8 channels
  EXPECT_FALSE(cpu::window_maxpool_handles({2, 8, 8, 64, 2, 2, 0}, DType::i32));
}

TEST(WindowMaxPool, MatchesPyTorchsRuleInEveryTypeAndLayout) {
  if (!has_avx512bw()) GTEST_SKIP() << "this CPU lacks AVX-512BW: oneDNN pools everything";
  for (const PoolGeometry& g : kShapes)
    for (DType dtype : {DType::f32, DType::bf16})
      for (Layout layout : {Layout::nhwc, Layout::nchw16c}) {
        SCOPED_TRACE(fmt::format("{}x{}x{} k{} {} {}", g.h, g.w, g.c, g.kernel,
                                 dtype == DType::bf16 ? "bf16" : "f32",
                                 layout == Layout::nhwc ? "nhwc" : "nChw16c"));
        std::mt19937 gen(41);
        const NaiveCase c = naive_case(g, gen);

        Tensor y, workspace, dx;
        cpu::window_maxpool_forward(g, prepared(c.x, layout, dtype), y, workspace);
        EXPECT_EQ(y.dtype(), dtype);
        EXPECT_EQ(y.layout(), layout);
        expect_same_values(as_nhwc_f32(y), c.y, "y");
        cpu::window_maxpool_backward(g, prepared(c.dy, layout, dtype), workspace, dx);
        EXPECT_EQ(dx.layout(), layout);
        expect_same_values(as_nhwc_f32(dx), c.dx, "dx");
      }
}

// Every element of dx is written: stale values in a reused buffer (here NaN) must not survive
// in the rows and columns no window covers.
TEST(WindowMaxPool, BackwardOverwritesAReusedBuffer) {
  if (!has_avx512bw()) GTEST_SKIP() << "this CPU lacks AVX-512BW: oneDNN pools everything";
  const PoolGeometry g{2, 7, 7, 16, 3, 3, 0};
  std::mt19937 gen(42);
  const Tensor x = random_tensor({g.n, g.h, g.w, g.c}, gen);
  Tensor y, workspace, dx = Tensor::empty(x.shape());
  std::fill_n(dx.data(), dx.numel(), std::numeric_limits<float>::quiet_NaN());
  cpu::window_maxpool_forward(g, x, y, workspace);
  cpu::window_maxpool_backward(g, random_tensor(y.shape(), gen), workspace, dx);
  for (int64_t i = 0; i < dx.numel(); ++i) ASSERT_FALSE(std::isnan(dx.data()[i])) << i;
}

// Through the backend, in f32 and bf16: a gradient arriving in the other layout is reordered
// to the workspace's.
TEST(WindowMaxPool, BackendReordersAGradientToItsWorkspacesLayout) {
  if (!has_avx512bw()) GTEST_SKIP() << "this CPU lacks AVX-512BW: oneDNN pools everything";
  const PoolGeometry g{2, 15, 15, 32, 2, 2, 0};
  std::mt19937 gen(43);
  const NaiveCase c = naive_case(g, gen);

  for (DType dtype : {DType::f32, DType::bf16}) {
    if (dtype == DType::bf16 && !cpu_has_native_bf16()) continue;
    SCOPED_TRACE(dtype == DType::bf16 ? "bf16" : "f32");
    auto be = dtype == DType::bf16 ? make_cpu_backend(0, false, CpuBf16::activations)
                                   : make_cpu_backend();
    Tensor y, workspace, dx;
    be->maxpool_forward(g, prepared(c.x, Layout::nchw16c, dtype), y, workspace);
    ASSERT_EQ(workspace.layout(), Layout::nchw16c);
    be->maxpool_backward(g, prepared(c.dy, Layout::nhwc, dtype), workspace, dx);
    EXPECT_EQ(dx.layout(), Layout::nchw16c);
    expect_same_values(as_nhwc_f32(dx), c.dx, "dx");
  }
}

// Where oneDNN pools (channels not a multiple of 16, overlapping or padded windows), a NaN among
// finite values is dropped: the window's finite maximum, unlike torch's NaN (README, "A NaN or
// Inf never reaches the weights"). Pinned so the README's note stays true of the oneDNN we link.
TEST(WindowMaxPool, OneDnnsPoolsTakeTheFiniteMaximumBesideANaN) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  for (const PoolGeometry g :
       {PoolGeometry{1, 4, 4, 8, 2, 2, 0}, PoolGeometry{1, 5, 5, 16, 3, 2, 1}}) {
    SCOPED_TRACE(fmt::format("c={} k={} s={} p={}", g.c, g.kernel, g.stride, g.pad));
    ASSERT_FALSE(cpu::window_maxpool_handles(g, DType::f32));
    Tensor x = Tensor::empty({g.n, g.h, g.w, g.c});
    for (int64_t i = 0; i < x.numel(); ++i) x.data()[i] = 0.5f + 0.001f * float(i % 97);
    // Pixel (1, 1), channel 3: in output (0, 0)'s window in both geometries, beside finite values.
    x.data()[(1 * g.w + 1) * g.c + 3] = nan;
    Tensor want = copy_of(x);
    want.data()[(1 * g.w + 1) * g.c + 3] = -std::numeric_limits<float>::infinity();
    auto be = make_cpu_backend();
    Tensor y, y_without_nan, workspace;
    be->maxpool_forward(g, x, y, workspace);
    be->maxpool_forward(g, want, y_without_nan, workspace);
    expect_same_values(y, y_without_nan, "y");
  }
}

}  // namespace
}  // namespace dp::test
