// GELU (erf form, torch.nn.GELU()) on oneDNN's eltwise primitives over flat f32 arrays. The
// backward primitive takes the forward's input (the erf form has no closed inverse from y).
#include "backend/cpu/dnnl_check.h"
#include "backend/cpu/onednn_ops.h"
#include "backend/operand_checks.h"

namespace dp::cpu {
namespace {

using dnnl::memory;
constexpr auto kAlgorithm = dnnl::algorithm::eltwise_gelu_erf;

memory::desc flat_desc(int64_t n) {
  return memory::desc({n}, memory::data_type::f32, memory::format_tag::a);
}

CacheKey gelu_key(int64_t n) { return {n, 0, 0, 0, 0, 0, 0, 0, 0, 0}; }

dnnl::eltwise_forward::primitive_desc forward_pd(int64_t n, const dnnl::engine& engine) {
  dnnl::eltwise_forward::desc desc(dnnl::prop_kind::forward_training, kAlgorithm, flat_desc(n),
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
  const int64_t n = x.numel();
  y.ensure(x.shape());
  with_dnnl("gelu_forward", [&] {
    Forward& e = fwd_.get(gelu_key(n), [&] {
      auto pd = forward_pd(n, ctx_.engine);
      return Forward{dnnl::eltwise_forward(pd), ctx_.unbound(pd.src_desc()),
                     ctx_.unbound(pd.dst_desc()), ctx_.unbound(pd.scratchpad_desc())};
    });
    e.src.set_data_handle(handle(x));
    e.dst.set_data_handle(y.data());
    ctx_.bind_scratchpad(e.scratch);
    e.prim.execute(ctx_.stream,
                   {{DNNL_ARG_SRC, e.src}, {DNNL_ARG_DST, e.dst}, {DNNL_ARG_SCRATCHPAD, e.scratch}});
    ctx_.stream.wait();
  });
  y.set_layout(x.layout());
}

// dy already in x's layout and of x's size (the caller reorders and checks).
void OnednnGelu::backward(const Tensor& x, const Tensor& dy, Tensor& dx) {
  const int64_t n = x.numel();
  dx.ensure(x.shape());
  with_dnnl("gelu_backward", [&] {
    Backward& e = bwd_.get(gelu_key(n), [&] {
      auto hint = forward_pd(n, ctx_.engine);
      dnnl::eltwise_backward::desc desc(kAlgorithm, flat_desc(n), flat_desc(n), 0.f, 0.f);
      dnnl::eltwise_backward::primitive_desc pd(desc, user_scratchpad_attr(), ctx_.engine, hint);
      return Backward{dnnl::eltwise_backward(pd), ctx_.unbound(pd.src_desc()),
                      ctx_.unbound(pd.diff_dst_desc()), ctx_.unbound(pd.diff_src_desc()),
                      ctx_.unbound(pd.scratchpad_desc())};
    });
    e.src.set_data_handle(handle(x));
    e.diff_dst.set_data_handle(handle(dy));
    e.diff_src.set_data_handle(dx.data());
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
