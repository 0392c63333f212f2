// ConvAsGemm: the pointwise and dense lowerings of conv_as_gemm.h on oneDNN's sgemm (row-major,
// threaded with the backend's OpenMP threads).
#include "backend/cpu/conv_as_gemm.h"

#include <cstring>
#include <oneapi/dnnl/dnnl.hpp>

#include "backend/cpu/openmp_threshold.h"
#include "core/env_switch.h"

namespace dp::cpu {
namespace {

// Pointwise convolutions are lowered up to this many output pixels per image (a 4x4 map). Above
// it oneDNN's 1x1 kernels have enough rows per image to block well and the GEMM stops winning
// (tests/backend/bench_conv; see tests/bench/results/code-measurements-backend.md).
constexpr int64_t kPointwiseMaxOutputPixels = 16;

// C[m, n] = op(A)[m, k] * op(B)[k, n], row-major; a transposed operand is stored as its
// transpose. A failure surfaces as dnnl::error, which the backend's with_dnnl turns into a
// dp::Error naming the op.
void sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const float* a,
           const float* b, float* c) {
  const int64_t lda = trans_a ? m : k, ldb = trans_b ? k : n;
  const dnnl_status_t status = dnnl_sgemm(trans_a ? 'T' : 'N', trans_b ? 'T' : 'N', m, n, k, 1.f,
                                          a, lda, b, ldb, 0.f, c, n);
  if (status != dnnl_success) throw dnnl::error(status, "sgemm");
}

// The kernel tap joining input pixel (ih, iw) to output pixel (oh, ow), or -1 where the
// output's window does not cover that input.
int64_t tap(const Conv2dGeometry& g, int64_t ih, int64_t iw, int64_t oh, int64_t ow) {
  const int64_t kh = ih + g.pad - oh * g.stride, kw = iw + g.pad - ow * g.stride;
  if (kh < 0 || kh >= g.kernel || kw < 0 || kw >= g.kernel) return -1;
  return kh * g.kernel + kw;
}

bool every_input_reaches_every_output(const Conv2dGeometry& g) {
  for (int64_t oh = 0; oh < g.out_h(); ++oh)
    for (int64_t ow = 0; ow < g.out_w(); ++ow)
      for (int64_t ih = 0; ih < g.h; ++ih)
        for (int64_t iw = 0; iw < g.w; ++iw)
          if (tap(g, ih, iw, oh, ow) < 0) return false;
  return true;
}

// Calls f(output pixel, input pixel, tap) for every pixel pair of a dense-lowered geometry.
template <typename F>
void for_each_pixel_pair(const Conv2dGeometry& g, F&& f) {
  for (int64_t oh = 0; oh < g.out_h(); ++oh)
    for (int64_t ow = 0; ow < g.out_w(); ++ow)
      for (int64_t ih = 0; ih < g.h; ++ih)
        for (int64_t iw = 0; iw < g.w; ++iw)
          f(oh * g.out_w() + ow, ih * g.w + iw, tap(g, ih, iw, oh, ow));
}

// dense[o*K + k][p*C + c] = w[k][c][tap(p, o)]: the [Ho*Wo*K, H*W*C] matrix of the dense layer.
// One parallel loop over the output channels: each reads its own weight rows.
void assemble_dense_weights(const Conv2dGeometry& g, const float* w, float* dense) {
  const int64_t taps = g.kernel * g.kernel, row = g.h * g.w * g.c_in;
#pragma omp parallel for if (g.c_out * g.c_in > kParallelMin)
  for (int64_t k = 0; k < g.c_out; ++k)
    for_each_pixel_pair(g, [&](int64_t o, int64_t p, int64_t t) {
      const float* src = w + k * g.c_in * taps + t;
      float* dst = dense + (o * g.c_out + k) * row + p * g.c_in;
      for (int64_t c = 0; c < g.c_in; ++c) dst[c] = src[c * taps];
    });
}

// The transpose of assemble_dense_weights: each tap's gradient is the sum over the pixel pairs
// it joins; taps that only ever see padding get zero.
void fold_dense_gradient(const Conv2dGeometry& g, const float* dense, float* dw) {
  const int64_t taps = g.kernel * g.kernel, row = g.h * g.w * g.c_in;
#pragma omp parallel for if (g.c_out * g.c_in > kParallelMin)
  for (int64_t k = 0; k < g.c_out; ++k) {
    std::memset(dw + k * g.c_in * taps, 0, sizeof(float) * g.c_in * taps);
    for_each_pixel_pair(g, [&](int64_t o, int64_t p, int64_t t) {
      const float* src = dense + (o * g.c_out + k) * row + p * g.c_in;
      float* dst = dw + k * g.c_in * taps + t;
      for (int64_t c = 0; c < g.c_in; ++c) dst[c * taps] += src[c];
    });
  }
}

// Calls f(image offset, pixel-matrix offset) for every pixel a strided 1x1 convolution reads:
// input pixel (n, y*s, x*s) is row (n, y, x) of the [N*Ho*Wo, C] pixel matrix.
template <typename F>
void for_each_strided_pixel(const Conv2dGeometry& g, F&& f) {
  const int64_t oh = g.out_h(), ow = g.out_w();
#pragma omp parallel for collapse(2) if (g.n * oh * ow * g.c_in > kParallelMin)
  for (int64_t n = 0; n < g.n; ++n)
    for (int64_t y = 0; y < oh; ++y)
      for (int64_t x = 0; x < ow; ++x)
        f(((n * g.h + y * g.stride) * g.w + x * g.stride) * g.c_in,
          ((n * oh + y) * ow + x) * g.c_in);
}

void gather_strided_pixels(const Conv2dGeometry& g, const float* image, float* pixels) {
  for_each_strided_pixel(g, [&](int64_t at_image, int64_t at_pixels) {
    std::memcpy(pixels + at_pixels, image + at_image, sizeof(float) * g.c_in);
  });
}

// The input gradient of a strided 1x1 convolution: the pixel-matrix gradient at the pixels it
// read, zero at the ones it skipped.
void scatter_strided_pixels(const Conv2dGeometry& g, const float* pixels, float* image) {
  std::memset(image, 0, sizeof(float) * g.n * g.h * g.w * g.c_in);
  for_each_strided_pixel(g, [&](int64_t at_image, int64_t at_pixels) {
    std::memcpy(image + at_image, pixels + at_pixels, sizeof(float) * g.c_in);
  });
}

float* grown(std::vector<float>& buffer, int64_t size) {
  if (static_cast<int64_t>(buffer.size()) < size) buffer.resize(size);
  return buffer.data();
}

}  // namespace

ConvLowering conv_lowering_for(const Conv2dGeometry& g) {
  if (g.trim != 0) return ConvLowering::none;  // the lowerings assume symmetric padding
  if (g.kernel == 1 && g.pad == 0)
    return g.out_h() * g.out_w() <= kPointwiseMaxOutputPixels ? ConvLowering::pointwise
                                                              : ConvLowering::none;
  if (every_input_reaches_every_output(g)) return ConvLowering::dense;
  return ConvLowering::none;
}

bool conv_gemm_from_environment() { return !env_switch("DPTRAIN_CPU_CONV_GEMM", "on", "off"); }

void ConvAsGemm::forward(ConvLowering how, const Conv2dGeometry& g, const Tensor& x,
                         const Tensor& w, Tensor& y) {
  const float* px = x.data();
  if (how == ConvLowering::pointwise) {
    const int64_t rows = g.n * g.out_h() * g.out_w();
    if (g.stride > 1) {
      float* pixels = grown(gathered_, rows * g.c_in);
      gather_strided_pixels(g, px, pixels);
      px = pixels;
    }
    sgemm(false, true, rows, g.c_out, g.c_in, px, w.data(), y.data());
  } else {
    const int64_t in = g.h * g.w * g.c_in, out = g.out_h() * g.out_w() * g.c_out;
    float* dense = grown(dense_, in * out);
    assemble_dense_weights(g, w.data(), dense);
    sgemm(false, true, g.n, out, in, px, dense, y.data());
  }
}

void ConvAsGemm::backward(ConvLowering how, const Conv2dGeometry& g, const Tensor& x,
                          const Tensor& w, const Tensor& dy, Tensor* dx, Tensor& dw) {
  if (how == ConvLowering::pointwise) {
    const int64_t rows = g.n * g.out_h() * g.out_w();
    const float* pixels = x.data();
    if (g.stride > 1) {
      float* gathered = grown(gathered_, rows * g.c_in);
      gather_strided_pixels(g, x.data(), gathered);
      pixels = gathered;
    }
    if (dx) {
      float* grad = g.stride > 1 ? grown(gathered_grad_, rows * g.c_in) : dx->data();
      sgemm(false, false, rows, g.c_in, g.c_out, dy.data(), w.data(), grad);
      if (g.stride > 1) scatter_strided_pixels(g, grad, dx->data());
    }
    sgemm(true, false, g.c_out, g.c_in, rows, dy.data(), pixels, dw.data());
  } else {
    const int64_t in = g.h * g.w * g.c_in, out = g.out_h() * g.out_w() * g.c_out;
    float* dense = grown(dense_, in * out);
    if (dx) {
      assemble_dense_weights(g, w.data(), dense);
      sgemm(false, false, g.n, in, out, dy.data(), dense, dx->data());
    }
    sgemm(true, false, out, in, g.n, dy.data(), x.data(), dense);
    fold_dense_gradient(g, dense, dw.data());
  }
}

}  // namespace dp::cpu
