// Max pooling on oneDNN, in the input's layout (NHWC or nChw16c). The forward keeps oneDNN's argmax workspace in the caller's
// workspace tensor so backward scatters gradients without recomputing the window maxima.
// Padding behaves as PyTorch's: padded positions never win the max.
#include "backend/cpu/activation_layout.h"
#include "backend/cpu/dnnl_check.h"
#include "backend/cpu/onednn_ops.h"

namespace dp::cpu {
namespace {

using dnnl::memory;
struct PoolDescs {
  memory::desc src, dst;
  memory::dims strides, kernel, pad;
};

// In the input's layout and type (f32 or bf16), which the output and both gradients share.
PoolDescs pool_descs(const PoolGeometry& g, Layout layout, DType dtype) {
  return {activation_desc(g.n, g.h, g.w, g.c, layout, dtype),
          activation_desc(g.n, g.out_h(), g.out_w(), g.c, layout, dtype),
          {g.stride, g.stride},
          {g.kernel, g.kernel},
          {g.pad, g.pad}};
}

CacheKey pool_key(const PoolGeometry& g, Layout layout, DType dtype) {
  return {g.n,      g.h,   g.w, g.c, g.kernel, g.stride, g.pad, static_cast<int64_t>(layout),
          static_cast<int64_t>(dtype), 0};
}

dnnl::pooling_forward::primitive_desc forward_pd(const PoolGeometry& g, Layout layout,
                                                 DType dtype, const dnnl::engine& engine) {
  PoolDescs d = pool_descs(g, layout, dtype);
  dnnl::pooling_forward::desc desc(dnnl::prop_kind::forward_training, dnnl::algorithm::pooling_max,
                                   d.src, d.dst, d.strides, d.kernel, d.pad, d.pad);
  return {desc, user_scratchpad_attr(), engine};
}

}  // namespace

struct OnednnMaxPool::Forward {
  dnnl::pooling_forward prim;
  memory src, dst, workspace, scratch;
};

struct OnednnMaxPool::Backward {
  dnnl::pooling_backward prim;
  memory diff_dst, diff_src, workspace, scratch;
};

OnednnMaxPool::OnednnMaxPool(DnnlContext& ctx) : ctx_(ctx) {}
OnednnMaxPool::~OnednnMaxPool() = default;

void OnednnMaxPool::forward(const PoolGeometry& g, const Tensor& x, Tensor& y, Tensor& workspace) {
  y.ensure({g.n, g.out_h(), g.out_w(), g.c}, x.dtype());
  with_dnnl("maxpool_forward", [&] {
    Forward& e = fwd_.get(pool_key(g, x.layout(), x.dtype()), [&] {
      auto pd = forward_pd(g, x.layout(), x.dtype(), ctx_.engine);
      return Forward{dnnl::pooling_forward(pd), ctx_.unbound(pd.src_desc()),
                     ctx_.unbound(pd.dst_desc()), ctx_.unbound(pd.workspace_desc()),
                     ctx_.unbound(pd.scratchpad_desc())};
    });
    workspace.ensure({static_cast<int64_t>(e.workspace.get_desc().get_size())}, DType::u8);
    e.src.set_data_handle(handle(x));
    e.dst.set_data_handle(y.data<void>());
    e.workspace.set_data_handle(workspace.data<void>());
    ctx_.bind_scratchpad(e.scratch);
    e.prim.execute(ctx_.stream, {{DNNL_ARG_SRC, e.src},
                                 {DNNL_ARG_DST, e.dst},
                                 {DNNL_ARG_WORKSPACE, e.workspace},
                                 {DNNL_ARG_SCRATCHPAD, e.scratch}});
    ctx_.stream.wait();
  });
  y.set_layout(x.layout());
}

// dy in the layout forward wrote y in; dx gets the same.
void OnednnMaxPool::backward(const PoolGeometry& g, const Tensor& dy, const Tensor& workspace,
                             Tensor& dx) {
  dx.ensure({g.n, g.h, g.w, g.c}, dy.dtype());
  with_dnnl("maxpool_backward", [&] {
    const Layout layout = dy.layout();
    Backward& e = bwd_.get(pool_key(g, layout, dy.dtype()), [&] {
      auto hint = forward_pd(g, layout, dy.dtype(), ctx_.engine);
      PoolDescs d = pool_descs(g, layout, dy.dtype());
      dnnl::pooling_backward::desc desc(dnnl::algorithm::pooling_max, d.src, d.dst, d.strides,
                                        d.kernel, d.pad, d.pad);
      dnnl::pooling_backward::primitive_desc pd(desc, user_scratchpad_attr(), ctx_.engine, hint);
      return Backward{dnnl::pooling_backward(pd), ctx_.unbound(pd.diff_dst_desc()),
                      ctx_.unbound(pd.diff_src_desc()), ctx_.unbound(pd.workspace_desc()),
                      ctx_.unbound(pd.scratchpad_desc())};
    });
    DP_CHECK(workspace.bytes() >= e.workspace.get_desc().get_size(),
             "maxpool workspace is {} bytes; maxpool_forward must run first", workspace.bytes());
    e.diff_dst.set_data_handle(handle(dy));
    e.diff_src.set_data_handle(dx.data<void>());
    e.workspace.set_data_handle(handle(workspace));
    ctx_.bind_scratchpad(e.scratch);
    e.prim.execute(ctx_.stream, {{DNNL_ARG_DIFF_DST, e.diff_dst},
                                 {DNNL_ARG_DIFF_SRC, e.diff_src},
                                 {DNNL_ARG_WORKSPACE, e.workspace},
                                 {DNNL_ARG_SCRATCHPAD, e.scratch}});
    ctx_.stream.wait();
  });
  dx.set_layout(dy.layout());
}

}  // namespace dp::cpu
