#include "backend/cpu/weight_grad_gemm.h"

#include <algorithm>
#include <cstring>

#include "backend/cpu/cpu_isa.h"
#include "backend/cpu/openmp_threshold.h"
#include "core/error.h"

namespace dp::cpu {
namespace {

using dnnl::memory;

constexpr int64_t kMinInputChannels = 256;

// col[r][(kh * k + kw) * C + c] = x[n][oy + kh - pad][ox + kw - pad][c] for the output pixels
// first .. first + rows (zero outside the image).
void gather_windows(const Conv2dGeometry& g, const uint16_t* x, int64_t first, int64_t rows,
                    uint16_t* col) {
  const int64_t oh = g.out_h(), ow = g.out_w(), c = g.c_in, k = g.kernel;
  const size_t bytes = sizeof(uint16_t) * c;
#pragma omp parallel for if (rows * k * k * c > kParallelMin)
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t p = first + r, n = p / (oh * ow), oy = p / ow % oh, ox = p % ow;
    uint16_t* out = col + r * k * k * c;
    for (int64_t kh = 0; kh < k; ++kh)
      for (int64_t kw = 0; kw < k; ++kw, out += c) {
        const int64_t iy = oy * g.stride + kh - g.pad, ix = ox * g.stride + kw - g.pad;
        if (iy < 0 || iy >= g.h || ix < 0 || ix >= g.w)
          std::memset(out, 0, bytes);
        else
          std::memcpy(out, x + ((n * g.h + iy) * g.w + ix) * c, bytes);
      }
  }
}

}  // namespace

struct WeightGradGemm::Matmul {
  dnnl::matmul prim;
  memory col_t, dy, dwt, scratch;
};

WeightGradGemm::WeightGradGemm(DnnlContext& ctx, int64_t chunk_pixels)
    : ctx_(ctx), chunk_pixels_(chunk_pixels) {}
WeightGradGemm::~WeightGradGemm() = default;

bool WeightGradGemm::available() {
  return effective_isa_includes(dnnl::cpu_isa::avx512_core_amx);
}

bool WeightGradGemm::applies(const Conv2dGeometry& g, const Tensor& x, const Tensor& dy) {
  static const bool amx = available();
  return amx && g.stride == 1 && g.c_in >= kMinInputChannels && x.dtype() == DType::bf16 &&
         dy.dtype() == DType::bf16 && x.layout() == Layout::nhwc && dy.layout() == Layout::nhwc;
}

// dwt [cols, c_out] (+)= col^T [cols, rows] x dy [rows, c_out]; col^T is col read transposed.
WeightGradGemm::Matmul& WeightGradGemm::matmul_for(int64_t rows, int64_t cols, int64_t c_out,
                                                   bool accumulate) {
  return matmuls_.get({rows, cols, c_out, accumulate, 0, 0, 0, 0, 0, 0}, [&] {
    const memory::desc col_t({cols, rows}, memory::data_type::bf16, memory::dims{1, cols});
    const memory::desc dy({rows, c_out}, memory::data_type::bf16, memory::format_tag::ab);
    const memory::desc dwt({cols, c_out}, memory::data_type::f32, memory::format_tag::ab);
    dnnl::primitive_attr attr = user_scratchpad_attr();
    if (accumulate) {
      dnnl::post_ops sum;
      sum.append_sum(1.f);
      attr.set_post_ops(sum);
    }
    dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(col_t, dy, dwt), attr, ctx_.engine);
    return Matmul{dnnl::matmul(pd), ctx_.unbound(col_t), ctx_.unbound(dy), ctx_.unbound(dwt),
                  ctx_.unbound(pd.scratchpad_desc())};
  });
}

void WeightGradGemm::compute(const Conv2dGeometry& g, const Tensor& x, const Tensor& dy,
                             Tensor& dw) {
  DP_CHECK(applies(g, x, dy), "weight gradient as GEMM: not for this convolution");
  const int64_t taps = g.kernel * g.kernel, cols = taps * g.c_in;
  const int64_t pixels = g.n * g.out_h() * g.out_w();
  col_.resize(static_cast<size_t>(std::min(pixels, chunk_pixels_) * cols));
  dwt_.resize(static_cast<size_t>(cols * g.c_out));
  for (int64_t first = 0; first < pixels; first += chunk_pixels_) {
    const int64_t rows = std::min(chunk_pixels_, pixels - first);
    gather_windows(g, x.data<uint16_t>(), first, rows, col_.data());
    Matmul& m = matmul_for(rows, cols, g.c_out, first > 0);
    m.col_t.set_data_handle(col_.data());
    m.dy.set_data_handle(const_cast<uint16_t*>(dy.data<uint16_t>()) + first * g.c_out);
    m.dwt.set_data_handle(dwt_.data());
    ctx_.bind_scratchpad(m.scratch);
    m.prim.execute(ctx_.stream, {{DNNL_ARG_SRC, m.col_t},
                                 {DNNL_ARG_WEIGHTS, m.dy},
                                 {DNNL_ARG_DST, m.dwt},
                                 {DNNL_ARG_SCRATCHPAD, m.scratch}});
    ctx_.stream.wait();
  }
  // dw[o][c][t] = dwt[t * C_in + c][o]
  dw.ensure({g.c_out, g.c_in, g.kernel, g.kernel});
  float* out = dw.data();
#pragma omp parallel for if (cols * g.c_out > kParallelMin)
  for (int64_t o = 0; o < g.c_out; ++o)
    for (int64_t c = 0; c < g.c_in; ++c)
      for (int64_t t = 0; t < taps; ++t)
        out[(o * g.c_in + c) * taps + t] = dwt_[(t * g.c_in + c) * g.c_out + o];
}

}  // namespace dp::cpu
