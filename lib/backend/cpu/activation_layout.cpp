#include "backend/cpu/activation_layout.h"

#include "backend/cpu/dnnl_check.h"
#include "core/error.h"

namespace dp::cpu {

using dnnl::memory;

Layout preferred_layout(bool blocked_enabled, int64_t c, int64_t h, int64_t w) {
  const bool blocked = blocked_enabled && c % kChannelBlock == 0 && c >= 2 * kChannelBlock &&
                       h >= kWinogradMinMap && w >= kWinogradMinMap;
  return blocked ? Layout::nchw16c : Layout::nhwc;
}

memory::data_type dnnl_type(DType dtype) {
  DP_CHECK(dtype == DType::f32 || dtype == DType::bf16, "activations are f32 or bf16");
  return dtype == DType::bf16 ? memory::data_type::bf16 : memory::data_type::f32;
}

memory::desc activation_desc(int64_t n, int64_t h, int64_t w, int64_t c, Layout layout,
                             DType dtype) {
  const auto tag =
      layout == Layout::nchw16c ? memory::format_tag::nChw16c : memory::format_tag::nhwc;
  return memory::desc({n, c, h, w}, dnnl_type(dtype), tag);
}

memory::desc activation_desc(const Tensor& t) {
  DP_CHECK(t.rank() == 4, "activation {} is not {{N,H,W,C}}", to_string(t.shape()));
  return activation_desc(t.dim(0), t.dim(1), t.dim(2), t.dim(3), t.layout(), t.dtype());
}

struct LayoutConverter::Reorder {
  dnnl::reorder prim;
  memory src, dst;
};

LayoutConverter::LayoutConverter(DnnlContext& ctx) : ctx_(ctx) {}
LayoutConverter::~LayoutConverter() = default;

// Activations ({N,H,W,C}) change layout and type; other tensors (a linear layer's {N, C}
// input) are flat arrays that change type only.
LayoutConverter::Reorder& LayoutConverter::reorder_for(const Tensor& src, Layout to,
                                                       DType to_dtype) {
  const bool activation = src.rank() == 4;
  const CacheKey key{activation ? src.dim(0) : src.numel(),
                     activation ? src.dim(1) : 0,
                     activation ? src.dim(2) : 0,
                     activation ? src.dim(3) : 0,
                     static_cast<int64_t>(src.layout()),
                     static_cast<int64_t>(to),
                     static_cast<int64_t>(src.dtype()),
                     static_cast<int64_t>(to_dtype),
                     0,
                     0};
  return reorders_.get(key, [&] {
    auto flat = [&](DType t) {
      return memory::desc({src.numel()}, dnnl_type(t), memory::format_tag::a);
    };
    memory from = ctx_.unbound(activation ? activation_desc(src) : flat(src.dtype()));
    memory into = ctx_.unbound(
        activation ? activation_desc(src.dim(0), src.dim(1), src.dim(2), src.dim(3), to, to_dtype)
                   : flat(to_dtype));
    return Reorder{dnnl::reorder(from, into), from, into};
  });
}

void LayoutConverter::run(const Tensor& src, Layout to, DType to_dtype, void* dst) {
  with_dnnl("layout conversion", [&] {
    Reorder& r = reorder_for(src, to, to_dtype);
    r.src.set_data_handle(const_cast<void*>(src.data<void>()));
    r.dst.set_data_handle(dst);
    r.prim.execute(ctx_.stream, r.src, r.dst);
    ctx_.stream.wait();
  });
}

void LayoutConverter::to_nhwc(const Tensor& src, void* dst) {
  run(src, Layout::nhwc, src.dtype(), dst);
}

void LayoutConverter::convert(const Tensor& src, Tensor& dst, Layout layout) {
  DP_CHECK(src.data<void>() != dst.data<void>(), "layout conversion in place");
  dst.ensure(src.shape(), src.dtype());
  run(src, layout, src.dtype(), dst.data<void>());
  dst.set_layout(layout);
}

void LayoutConverter::convert_type(const Tensor& src, Tensor& dst, DType dtype) {
  DP_CHECK(src.data<void>() != dst.data<void>(), "type conversion in place");
  dst.ensure(src.shape(), dtype);
  run(src, src.layout(), dtype, dst.data<void>());
  dst.set_layout(src.layout());
}

const Tensor& LayoutConverter::in_dtype(const Tensor& t, DType dtype, Tensor& scratch) {
  if (t.dtype() == dtype) return t;
  convert_type(t, scratch, dtype);
  return scratch;
}

const Tensor& LayoutConverter::in_layout(const Tensor& t, Layout layout, Tensor& scratch) {
  if (t.layout() == layout) return t;
  convert(t, scratch, layout);
  return scratch;
}

}  // namespace dp::cpu
