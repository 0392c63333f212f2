// GELU (erf form, torch.nn.GELU()) on oneDNN's eltwise primitives over flat f32 or bf16 arrays
// (bf16 is computed in f32 and rounded once). The backward primitive takes the forward's input
// (the erf form has no closed inverse from y).
#include "backend/cpu/activation_layout.h"
#include "backend/cpu/dnnl_check.h"
#include "backend/cpu/onednn_ops.h"
#include "backend/operand_checks.h"

namespace dp::cpu {
namespace {

using dnnl::memory;
constexpr auto kAlgorithm = dnnl::algorithm::eltwise_gelu_erf;

// x, y, dy and dx share x's type.
memory::desc flat_desc(const Tensor& x) {
  return memory::desc({x.numel()}, dnnl_type(x.dtype()), memory::format_tag::a);
}

CacheKey gelu_key(const Tensor& x) {
  return {x.numel(), static_cast<int64_t>(x.dtype()), 0, 0, 0, 0, 0, 0, 0, 0};
}

dnnl::eltwise_forward::primitive_desc forward_pd(const Tensor& x, const dnnl::engine& engine) {
  dnnl::eltwise_forward::desc desc(dnnl::prop_kind::forward_training, kAlgorithm, flat_desc(x),
                                   0.f, 0.f);
  return {desc, user_scratchpad_attr(), engine};
}

}  // namespace

struct OnednnGelu::Forward {
  dnnl::eltwise_forward prim;
  memory src, dst, scratch;
};

struct OnednnGelu::Backward {
  dnnl::eltwise_backward prim;
  memory src, diff_dst, diff_src, scratch;
};

OnednnGelu::OnednnGelu(DnnlContext& ctx) : ctx_(ctx) {}
OnednnGelu::~OnednnGelu() = default;

void OnednnGelu::forward(const Tensor& x, Tensor& y) {
  y.ensure(x.shape(), x.dtype());
  with_dnnl("gelu_forward", [&] {
    Forward& e = fwd_.get(gelu_key(x), [&] {
      auto pd = forward_pd(x, ctx_.engine);
      return Forward{dnnl::eltwise_forward(pd), ctx_.unbound(pd.src_desc()),
                     ctx_.unbound(pd.dst_desc()), ctx_.unbound(pd.scratchpad_desc())};
    });
    e.src.set_data_handle(handle(x));
    e.dst.set_data_handle(y.data<void>());
    ctx_.bind_scratchpad(e.scratch);
    e.prim.execute(ctx_.stream,
                   {{DNNL_ARG_SRC, e.src}, {DNNL_ARG_DST, e.dst}, {DNNL_ARG_SCRATCHPAD, e.scratch}});
    ctx_.stream.wait();
  });
  y.set_layout(x.layout());
}

// dy already in x's layout and of x's size (the caller reorders and checks).
void OnednnGelu::backward(const Tensor& x, const Tensor& dy, Tensor& dx) {
  DP_CHECK(dy.dtype() == x.dtype(), "gelu_backward: output gradient and input differ in type");
  dx.ensure(x.shape(), x.dtype());
  with_dnnl("gelu_backward", [&] {
    Backward& e = bwd_.get(gelu_key(x), [&] {
      auto hint = forward_pd(x, ctx_.engine);
      dnnl::eltwise_backward::desc desc(kAlgorithm, flat_desc(x), flat_desc(x), 0.f, 0.f);
      dnnl::eltwise_backward::primitive_desc pd(desc, user_scratchpad_attr(), ctx_.engine, hint);
      return Backward{dnnl::eltwise_backward(pd), ctx_.unbound(pd.src_desc()),
                      ctx_.unbound(pd.diff_dst_desc()), ctx_.unbound(pd.diff_src_desc()),
                      ctx_.unbound(pd.scratchpad_desc())};
    });
    e.src.set_data_handle(handle(x));
    e.diff_dst.set_data_handle(handle(dy));
    e.diff_src.set_data_handle(dx.data<void>());
    ctx_.bind_scratchpad(e.scratch);
    e.prim.execute(ctx_.stream, {{DNNL_ARG_SRC, e.src},
                                 {DNNL_ARG_DIFF_DST, e.diff_dst},
                                 {DNNL_ARG_DIFF_SRC, e.diff_src},
                                 {DNNL_ARG_SCRATCHPAD, e.scratch}});
    ctx_.stream.wait();
  });
  dx.set_layout(x.layout());
}

}  // namespace dp::cpu
