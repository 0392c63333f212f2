// The fully connected layer (y = x w^T + b) on oneDNN's inner product, in plain layouts: the
// weights are PyTorch's {out, in} ("oi"), so no reorder is needed in either direction.
#include "backend/cpu/dnnl_check.h"
#include "backend/cpu/onednn_ops.h"

namespace dp::cpu {
namespace {

using dnnl::memory;
using tag = memory::format_tag;
constexpr auto f32 = memory::data_type::f32;

struct LinearShape {
  int64_t n, in, out;
};

struct LinearDescs {
  memory::desc src, weights, bias, dst;
};

LinearDescs linear_descs(const LinearShape& s) {
  return {memory::desc({s.n, s.in}, f32, tag::nc), memory::desc({s.out, s.in}, f32, tag::oi),
          memory::desc({s.out}, f32, tag::x), memory::desc({s.n, s.out}, f32, tag::nc)};
}

CacheKey linear_key(const LinearShape& s) { return {s.n, s.in, s.out, 0, 0, 0, 0, 0, 0, 0}; }

// x may carry trailing spatial dims of size 1 ({N,1,1,C}); it is read as {N, numel/N}.
LinearShape linear_shape(const Tensor& x, const Tensor& w) {
  DP_CHECK(w.rank() == 2 && x.rank() >= 2, "linear expects w {{out,in}}, got x {} w {}",
           to_string(x.shape()), to_string(w.shape()));
  LinearShape s{x.dim(0), x.numel() / x.dim(0), w.dim(0)};
  DP_CHECK(s.in == w.dim(1), "linear input {} does not match weight {}", to_string(x.shape()),
           to_string(w.shape()));
  return s;
}

dnnl::inner_product_forward::primitive_desc forward_pd(const LinearShape& s,
                                                       const dnnl::engine& engine) {
  LinearDescs d = linear_descs(s);
  dnnl::inner_product_forward::desc desc(dnnl::prop_kind::forward_training, d.src, d.weights,
                                         d.bias, d.dst);
  return {desc, user_scratchpad_attr(), engine};
}

}  // namespace

struct OnednnLinear::Forward {
  dnnl::inner_product_forward prim;
  memory src, weights, bias, dst, scratch;
};

struct OnednnLinear::BackwardData {
  dnnl::inner_product_backward_data prim;
  memory diff_src, weights, diff_dst, scratch;
};

struct OnednnLinear::BackwardWeights {
  dnnl::inner_product_backward_weights prim;
  memory src, diff_weights, diff_bias, diff_dst, scratch;
};

OnednnLinear::OnednnLinear(DnnlContext& ctx) : ctx_(ctx) {}
OnednnLinear::~OnednnLinear() = default;

void OnednnLinear::forward(const Tensor& x, const Tensor& w, const Tensor& b, Tensor& y) {
  LinearShape s = linear_shape(x, w);
  DP_CHECK(b.numel() == s.out, "linear bias {} is not ({})", to_string(b.shape()), s.out);
  y.ensure({s.n, s.out});
  with_dnnl("linear_forward", [&] {
    Forward& e = fwd_.get(linear_key(s), [&] {
      auto pd = forward_pd(s, ctx_.engine);
      return Forward{dnnl::inner_product_forward(pd), ctx_.unbound(pd.src_desc()),
                     ctx_.unbound(pd.weights_desc()), ctx_.unbound(pd.bias_desc()),
                     ctx_.unbound(pd.dst_desc()),     ctx_.unbound(pd.scratchpad_desc())};
    });
    e.src.set_data_handle(handle(x));
    e.weights.set_data_handle(handle(w));
    e.bias.set_data_handle(handle(b));
    e.dst.set_data_handle(y.data());
    ctx_.bind_scratchpad(e.scratch);
    e.prim.execute(ctx_.stream, {{DNNL_ARG_SRC, e.src},
                                 {DNNL_ARG_WEIGHTS, e.weights},
                                 {DNNL_ARG_BIAS, e.bias},
                                 {DNNL_ARG_DST, e.dst},
                                 {DNNL_ARG_SCRATCHPAD, e.scratch}});
    ctx_.stream.wait();
  });
}

void OnednnLinear::backward(const Tensor& x, const Tensor& w, const Tensor& dy, Tensor& dx,
                            Tensor& dw, Tensor& db) {
  LinearShape s = linear_shape(x, w);
  DP_CHECK(dy.shape() == (Shape{s.n, s.out}), "linear output gradient {} is not ({}, {})",
           to_string(dy.shape()), s.n, s.out);
  dx.ensure(x.shape());
  dw.ensure(w.shape());
  db.ensure({s.out});
  with_dnnl("linear_backward", [&] {
    BackwardData& ed = bwd_data_.get(linear_key(s), [&] {
      auto hint = forward_pd(s, ctx_.engine);
      LinearDescs d = linear_descs(s);
      dnnl::inner_product_backward_data::desc desc(d.src, d.weights, d.dst);
      dnnl::inner_product_backward_data::primitive_desc pd(desc, user_scratchpad_attr(),
                                                           ctx_.engine, hint);
      return BackwardData{dnnl::inner_product_backward_data(pd), ctx_.unbound(pd.diff_src_desc()),
                          ctx_.unbound(pd.weights_desc()), ctx_.unbound(pd.diff_dst_desc()),
                          ctx_.unbound(pd.scratchpad_desc())};
    });
    BackwardWeights& ew = bwd_weights_.get(linear_key(s), [&] {
      auto hint = forward_pd(s, ctx_.engine);
      LinearDescs d = linear_descs(s);
      dnnl::inner_product_backward_weights::desc desc(d.src, d.weights, d.bias, d.dst);
      dnnl::inner_product_backward_weights::primitive_desc pd(desc, user_scratchpad_attr(),
                                                              ctx_.engine, hint);
      return BackwardWeights{
          dnnl::inner_product_backward_weights(pd), ctx_.unbound(pd.src_desc()),
          ctx_.unbound(pd.diff_weights_desc()),     ctx_.unbound(pd.diff_bias_desc()),
          ctx_.unbound(pd.diff_dst_desc()),         ctx_.unbound(pd.scratchpad_desc())};
    });
    ed.diff_src.set_data_handle(dx.data());
    ed.weights.set_data_handle(handle(w));
    ed.diff_dst.set_data_handle(handle(dy));
    ctx_.bind_scratchpad(ed.scratch);
    ed.prim.execute(ctx_.stream, {{DNNL_ARG_DIFF_SRC, ed.diff_src},
                                  {DNNL_ARG_WEIGHTS, ed.weights},
                                  {DNNL_ARG_DIFF_DST, ed.diff_dst},
                                  {DNNL_ARG_SCRATCHPAD, ed.scratch}});
    ctx_.stream.wait();  // the shared scratchpad may be regrown for the next primitive
    ew.src.set_data_handle(handle(x));
    ew.diff_weights.set_data_handle(dw.data());
    ew.diff_bias.set_data_handle(db.data());
    ew.diff_dst.set_data_handle(handle(dy));
    ctx_.bind_scratchpad(ew.scratch);
    ew.prim.execute(ctx_.stream, {{DNNL_ARG_SRC, ew.src},
                                  {DNNL_ARG_DIFF_WEIGHTS, ew.diff_weights},
                                  {DNNL_ARG_DIFF_BIAS, ew.diff_bias},
                                  {DNNL_ARG_DIFF_DST, ew.diff_dst},
                                  {DNNL_ARG_SCRATCHPAD, ew.scratch}});
    ctx_.stream.wait();
  });
}

}  // namespace dp::cpu
