#include "backend/cpu/weight_grad_gemm.h"

#include <algorithm>

#include "backend/cpu/cpu_isa.h"
#include "backend/cpu/openmp_threshold.h"
#include "backend/cpu/simd_lanes.h"
#include "core/error.h"

namespace dp::cpu {
namespace {

using dnnl::memory;

// col's layout, oneDNN's BA16a64b2a for a [pixels, columns] bf16 matrix (pixels padded to 32,
// the tag's 16 x 2 rows): blocks of 64 columns outermost, then pixel pairs, then the block's 64
// columns with the pair's two values side by side (bf16 is multiplied in pairs along the summed
// dimension). Element (r, n) of a [rows, cols] col is at n / 64 * rows * 64 + r / 2 * 128 +
// n % 64 * 2 + r % 2.
constexpr int64_t kColumnBlock = 64;
constexpr memory::format_tag kColTag = memory::format_tag::BA16a64b2a;
constexpr int64_t kGroup = 32;  // channels per 512-bit register of bf16

int64_t round_up(int64_t v, int64_t to) { return (v + to - 1) / to * to; }

// Whether oneDNN finds AMX: the CPUs where the 64-channel layers and the small chunks were
// measured faster (asked once).
bool amx_found() {
  static const bool found = effective_isa_includes(dnnl::cpu_isa::avx512_core_amx);
  return found;
}

// Output pixel p's window: its input corner (may lie in the padding) and image, or none
// when p is past the last pixel. Computed once per pixel; each tap then only adds.
struct Window {
  const uint16_t* image = nullptr;  // the image's first input pixel; null past the last pixel
  int64_t y0 = 0, x0 = 0;           // input row and column under tap (0, 0)
};

Window window_of(const Conv2dGeometry& g, const uint16_t* x, int64_t pixels, int64_t p) {
  if (p >= pixels) return {};
  const int64_t oh = g.out_h(), ow = g.out_w();
  const int64_t n = p / (oh * ow), oy = p / ow % oh, ox = p % ow;
  return {x + n * g.h * g.w * g.c_in, oy * g.stride - g.pad, ox * g.stride - g.pad};
}

// Where the input pixel under tap (kh, kw) of a window is, or nullptr for padding or no pixel.
const uint16_t* window_tap(const Conv2dGeometry& g, const Window& win, int64_t kh, int64_t kw) {
  const int64_t iy = win.y0 + kh, ix = win.x0 + kw;
  if (!win.image || iy < 0 || iy >= g.h || ix < 0 || ix >= g.w) return nullptr;
  return win.image + (iy * g.w + ix) * g.c_in;
}

DP_AVX512BW __m512i load_group(const uint16_t* p) {
  return p ? _mm512_loadu_si512(p) : _mm512_setzero_si512();
}

// Chunk row pair (r, r + 1), r even, of col [rows, taps * C_in] in kColTag: the windows of
// output pixels first + r and first + r + 1, interleaved channel by channel.
DP_AVX512BW void gather_pair(const Conv2dGeometry& g, const uint16_t* x, int64_t pixels,
                             int64_t first, int64_t rows, int64_t r, uint16_t* col) {
  const __m512i low_half = _mm512_set_epi16(47, 15, 46, 14, 45, 13, 44, 12, 43, 11, 42, 10, 41,
                                            9, 40, 8, 39, 7, 38, 6, 37, 5, 36, 4, 35, 3, 34, 2,
                                            33, 1, 32, 0);
  const __m512i high_half = _mm512_add_epi16(low_half, _mm512_set1_epi16(16));
  uint16_t* pair = col + r / 2 * 2 * kColumnBlock;
  const Window wa = window_of(g, x, pixels, first + r), wb = window_of(g, x, pixels, first + r + 1);
  for (int64_t kh = 0, n = 0; kh < g.kernel; ++kh)
    for (int64_t kw = 0; kw < g.kernel; ++kw) {
      const uint16_t* a = window_tap(g, wa, kh, kw);
      const uint16_t* b = window_tap(g, wb, kh, kw);
      for (int64_t c = 0; c < g.c_in; c += kGroup, n += kGroup) {
        const __m512i u = load_group(a ? a + c : nullptr), v = load_group(b ? b + c : nullptr);
        uint16_t* out = pair + n / kColumnBlock * rows * kColumnBlock + n % kColumnBlock * 2;
        _mm512_storeu_si512(out, _mm512_permutex2var_epi16(u, low_half, v));
        _mm512_storeu_si512(out + kGroup, _mm512_permutex2var_epi16(u, high_half, v));
      }
    }
}

// col [rows, taps * C_in] in kColTag for output pixels first .. first + rows (rows a whole
// number of blocks; pixels past the last one and padding read as zero).
void gather_windows_blocked(const Conv2dGeometry& g, const uint16_t* x, int64_t pixels,
                            int64_t first, int64_t rows, uint16_t* col) {
#pragma omp parallel for if (rows * g.kernel * g.kernel * g.c_in > kParallelMin)
  for (int64_t r = 0; r < rows; r += 2) gather_pair(g, x, pixels, first, rows, r, col);
}

}  // namespace

struct WeightGradGemm::Matmul {
  dnnl::matmul prim;
  memory dyt, col, dw, scratch;
};

struct WeightGradGemm::Transpose {
  dnnl::reorder prim;
  memory dy, dyt;
};

WeightGradGemm::WeightGradGemm(DnnlContext& ctx, int64_t chunk_pixels)
    : ctx_(ctx),
      chunk_pixels_(round_up(std::max<int64_t>(chunk_pixels, 1), kPixelBlock)),
      converter_(ctx) {}
WeightGradGemm::~WeightGradGemm() = default;

bool WeightGradGemm::available() {
  return effective_isa_includes(dnnl::cpu_isa::avx512_core_bf16);
}

int64_t WeightGradGemm::default_chunk_pixels() { return amx_found() ? 1024 : 4096; }

int64_t WeightGradGemm::min_input_channels() { return amx_found() ? 64 : 256; }

bool WeightGradGemm::computes(const Conv2dGeometry& g, const Tensor& x, const Tensor& dy) {
  static const bool bf16_matmul = available();
  return bf16_matmul && g.stride == 1 && g.c_in % kColumnBlock == 0 && x.dtype() == DType::bf16 &&
         dy.dtype() == DType::bf16 && x.layout() == dy.layout();
}

bool WeightGradGemm::applies(const Conv2dGeometry& g, const Tensor& x, const Tensor& dy) {
  return g.c_in >= min_input_channels() && computes(g, x, dy);
}

// dw [c_out, cols] (+)= dyt [c_out, rows] x col [rows, cols] (kColTag). Both operands are
// dense: oneDNN's bf16 matmul takes neither a strided source nor a source it has to transpose.
WeightGradGemm::Matmul& WeightGradGemm::matmul_for(int64_t rows, int64_t cols, int64_t c_out,
                                                   bool accumulate) {
  return matmuls_.get({rows, cols, c_out, accumulate, 0, 0, 0, 0, 0, 0}, [&] {
    const memory::desc dyt({c_out, rows}, memory::data_type::bf16, memory::format_tag::ab);
    const memory::desc col({rows, cols}, memory::data_type::bf16, kColTag);
    const memory::desc dw({c_out, cols}, memory::data_type::f32, memory::format_tag::ab);
    dnnl::primitive_attr attr = user_scratchpad_attr();
    if (accumulate) {
      dnnl::post_ops sum;
      sum.append_sum(1.f);
      attr.set_post_ops(sum);
    }
    dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(dyt, col, dw), attr, ctx_.engine);
    return Matmul{dnnl::matmul(pd), ctx_.unbound(dyt), ctx_.unbound(col), ctx_.unbound(dw),
                  ctx_.unbound(pd.scratchpad_desc())};
  });
}

// dyt_ [c_out, rows] = dy's pixels first .. first + pixels, transposed; zero past them.
void WeightGradGemm::transpose_dy(const Tensor& dy, int64_t first, int64_t pixels, int64_t rows,
                                  int64_t c_out) {
  dyt_.ensure({c_out, rows}, DType::bf16);
  uint16_t* dyt = dyt_.data<uint16_t>();
  Transpose& t = transposes_.get({pixels, rows, c_out, 0, 0, 0, 0, 0, 0, 0}, [&] {
    const memory::desc plain({pixels, c_out}, memory::data_type::bf16, memory::format_tag::ab);
    const memory::desc transposed({pixels, c_out}, memory::data_type::bf16,
                                  memory::dims{1, rows});
    const memory dy_mem = ctx_.unbound(plain), dyt_mem = ctx_.unbound(transposed);
    return Transpose{dnnl::reorder(dy_mem, dyt_mem), dy_mem, dyt_mem};
  });
  t.dy.set_data_handle(const_cast<uint16_t*>(dy.data<uint16_t>()) + first * c_out);
  t.dyt.set_data_handle(dyt);
  t.prim.execute(ctx_.stream, t.dy, t.dyt);
  ctx_.stream.wait();
  for (int64_t o = 0; o < c_out && rows > pixels; ++o)
    std::fill(dyt + o * rows + pixels, dyt + (o + 1) * rows, uint16_t{0});
}

void WeightGradGemm::compute(const Conv2dGeometry& g, const Tensor& x, const Tensor& dy,
                             Tensor& dw) {
  DP_CHECK(computes(g, x, dy), "weight gradient as GEMM: not for this convolution");
  // The gather and the transpose read NHWC: blocked operands are reordered once, whole.
  const Tensor& x_nhwc = converter_.in_layout(x, Layout::nhwc, x_nhwc_);
  const Tensor& dy_nhwc = converter_.in_layout(dy, Layout::nhwc, dy_nhwc_);
  const int64_t taps = g.kernel * g.kernel, cols = taps * g.c_in;
  const int64_t pixels = g.n * g.out_h() * g.out_w(), padded = round_up(pixels, kPixelBlock);
  col_.ensure({std::min(padded, chunk_pixels_), cols}, DType::bf16);
  dw_.ensure({g.c_out, cols});
  for (int64_t first = 0; first < padded; first += chunk_pixels_) {
    const int64_t rows = std::min(chunk_pixels_, padded - first);
    transpose_dy(dy_nhwc, first, std::min(rows, pixels - first), rows, g.c_out);
    gather_windows_blocked(g, x_nhwc.data<uint16_t>(), pixels, first, rows,
                           col_.data<uint16_t>());
    Matmul& m = matmul_for(rows, cols, g.c_out, first > 0);
    m.dyt.set_data_handle(dyt_.data<uint16_t>());
    m.col.set_data_handle(col_.data<uint16_t>());
    m.dw.set_data_handle(dw_.data());
    ctx_.bind_scratchpad(m.scratch);
    m.prim.execute(ctx_.stream, {{DNNL_ARG_SRC, m.dyt},
                                 {DNNL_ARG_WEIGHTS, m.col},
                                 {DNNL_ARG_DST, m.dw},
                                 {DNNL_ARG_SCRATCHPAD, m.scratch}});
    ctx_.stream.wait();
  }
  // dw[o][c][t] = dw_[o][t * C_in + c]
  dw.ensure({g.c_out, g.c_in, g.kernel, g.kernel});
  float* out = dw.data();
  const float* rows_of_o = dw_.data();
#pragma omp parallel for if (cols * g.c_out > kParallelMin)
  for (int64_t o = 0; o < g.c_out; ++o)
    for (int64_t c = 0; c < g.c_in; ++c)
      for (int64_t t = 0; t < taps; ++t)
        out[(o * g.c_in + c) * taps + t] = rows_of_o[o * cols + t * g.c_in + c];
}

}  // namespace dp::cpu
