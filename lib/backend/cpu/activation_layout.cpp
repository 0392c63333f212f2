#include "backend/cpu/activation_layout.h"

#include "backend/cpu/dnnl_check.h"
#include "core/error.h"

namespace dp::cpu {

using dnnl::memory;

Layout preferred_layout(bool blocked_enabled, int64_t c, int64_t h, int64_t w) {
  const bool blocked = blocked_enabled && c % 16 == 0 && c >= 32 && h >= kWinogradMinMap &&
                       w >= kWinogradMinMap;
  return blocked ? Layout::nchw16c : Layout::nhwc;
}

memory::desc activation_desc(int64_t n, int64_t h, int64_t w, int64_t c, Layout layout) {
  const auto tag = layout == Layout::nchw16c ? memory::format_tag::nChw16c : memory::format_tag::nhwc;
  return memory::desc({n, c, h, w}, memory::data_type::f32, tag);
}

memory::desc activation_desc(const Tensor& t) {
  DP_CHECK(t.rank() == 4 && t.dtype() == DType::f32, "activation {} is not f32 NHWC",
           to_string(t.shape()));
  return activation_desc(t.dim(0), t.dim(1), t.dim(2), t.dim(3), t.layout());
}

struct LayoutConverter::Reorder {
  dnnl::reorder prim;
  memory src, dst;
};

LayoutConverter::LayoutConverter(DnnlContext& ctx) : ctx_(ctx) {}
LayoutConverter::~LayoutConverter() = default;

LayoutConverter::Reorder& LayoutConverter::reorder_for(const Tensor& src, Layout to) {
  const CacheKey key{src.dim(0), src.dim(1), src.dim(2), src.dim(3),
                     static_cast<int64_t>(src.layout()), static_cast<int64_t>(to), 0, 0, 0, 0};
  return reorders_.get(key, [&] {
    memory from = ctx_.unbound(activation_desc(src));
    memory into = ctx_.unbound(activation_desc(src.dim(0), src.dim(1), src.dim(2), src.dim(3), to));
    return Reorder{dnnl::reorder(from, into), from, into};
  });
}

void LayoutConverter::run(const Tensor& src, Layout to, void* dst) {
  with_dnnl("layout conversion", [&] {
    Reorder& r = reorder_for(src, to);
    r.src.set_data_handle(const_cast<void*>(src.data<void>()));
    r.dst.set_data_handle(dst);
    r.prim.execute(ctx_.stream, r.src, r.dst);
    ctx_.stream.wait();
  });
}

void LayoutConverter::to_nhwc(const Tensor& src, void* dst) { run(src, Layout::nhwc, dst); }

void LayoutConverter::convert(const Tensor& src, Tensor& dst, Layout layout) {
  DP_CHECK(src.data<void>() != dst.data<void>(), "layout conversion in place");
  dst.ensure(src.shape());
  run(src, layout, dst.data());
  dst.set_layout(layout);
}

const Tensor& LayoutConverter::in_layout(const Tensor& t, Layout layout, Tensor& scratch) {
  if (t.layout() == layout) return t;
  convert(t, scratch, layout);
  return scratch;
}

}  // namespace dp::cpu
