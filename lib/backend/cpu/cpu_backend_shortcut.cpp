// CpuBackend's option-A shortcut (Backend::subsample_pad_*): OpenMP loops that read and write
// NHWC or nChw16c activations directly, so the shortcut costs no reorder at a blocked stage's
// edge. The output (and the input gradient) is written in the layout a convolution would give
// its shape (preferred_layout), which is the layout of the tensor it is added to or accumulated
// into inside a network; the other operand is read in whatever layout it has.
#include <numeric>

#include "backend/cpu/cpu_backend.h"
#include "backend/cpu/openmp_threshold.h"
#include "backend/operand_checks.h"

namespace dp::cpu {
namespace {

// Where channel k of pixel (y, x) of image b sits: NHWC is nChw16c's formula with one block of
// all C channels, so one formula serves both.
struct ActivationIndex {
  int64_t h, w, c, block;
  ActivationIndex(int64_t h_, int64_t w_, int64_t c_, Layout layout)
      : h(h_), w(w_), c(c_), block(layout == Layout::nchw16c ? kChannelBlock : c_) {}
  int64_t operator()(int64_t b, int64_t y, int64_t x, int64_t k) const {
    return (((b * (c / block) + k / block) * h + y) * w + x) * block + k % block;
  }
};

// Channels [k, k + run) are contiguous in both layouts for every k that is a multiple of `run`:
// a block size divides its tensor's channel count (16 | C in nChw16c), so their gcd divides
// c_in and c_out.
int64_t common_run(const ActivationIndex& a, const ActivationIndex& b) {
  return std::gcd(a.block, b.block);
}

}  // namespace

void CpuBackend::subsample_pad_forward(const SubsamplePadGeometry& g, const Tensor& x, Tensor& y) {
  check_subsample_pad_input(g, x, "subsample_pad_forward");
  check_f32("subsample_pad_forward", {&x});
  const int64_t oh = g.out_h(), ow = g.out_w();
  y.ensure({g.n, oh, ow, g.c_out});
  y.set_layout(preferred_layout(blocked_, g.c_out, oh, ow));
  const ActivationIndex in(g.h, g.w, g.c_in, x.layout()), out(oh, ow, g.c_out, y.layout());
  const int64_t run = common_run(in, out);
  const float* px = x.data();
  float* py = y.data();
#pragma omp parallel for collapse(2) if (y.numel() > kParallelMin)
  for (int64_t b = 0; b < g.n; ++b)
    for (int64_t i = 0; i < oh; ++i)
      for (int64_t j = 0; j < ow; ++j)
        for (int64_t k0 = 0; k0 < g.c_out; k0 += run) {
          float* dst = py + out(b, i, j, k0);
          if (k0 >= g.c_in) {
            for (int64_t k = 0; k < run; ++k) dst[k] = 0.f;
            continue;
          }
          const float* src = px + in(b, i * g.stride, j * g.stride, k0);
#pragma omp simd
          for (int64_t k = 0; k < run; ++k) dst[k] = src[k];
        }
}

// A gather over dx rather than a scatter from dy: every element of dx is written once, so no
// zero fill is needed first and threads never share an element.
void CpuBackend::subsample_pad_backward(const SubsamplePadGeometry& g, const Tensor& dy,
                                        Tensor& dx) {
  check_f32("subsample_pad_backward", {&dy});
  check_subsample_pad_output_gradient(g, dy, "subsample_pad_backward");
  dx.ensure({g.n, g.h, g.w, g.c_in});
  dx.set_layout(preferred_layout(blocked_, g.c_in, g.h, g.w));
  const ActivationIndex in(g.h, g.w, g.c_in, dx.layout());
  const ActivationIndex out(g.out_h(), g.out_w(), g.c_out, dy.layout());
  const int64_t run = common_run(in, out);
  const float* pdy = dy.data();
  float* pdx = dx.data();
#pragma omp parallel for collapse(2) if (dx.numel() > kParallelMin)
  for (int64_t b = 0; b < g.n; ++b)
    for (int64_t y = 0; y < g.h; ++y)
      for (int64_t x = 0; x < g.w; ++x) {
        const bool read = y % g.stride == 0 && x % g.stride == 0;
        for (int64_t k0 = 0; k0 < g.c_in; k0 += run) {
          float* dst = pdx + in(b, y, x, k0);
          if (!read) {
            for (int64_t k = 0; k < run; ++k) dst[k] = 0.f;
            continue;
          }
          const float* src = pdy + out(b, y / g.stride, x / g.stride, k0);
#pragma omp simd
          for (int64_t k = 0; k < run; ++k) dst[k] = src[k];
        }
      }
}

}  // namespace dp::cpu
