// Convolution on oneDNN: forward, backward-data and backward-weights primitives, one cache
// entry per geometry. Activations stay plain NHWC; weights use format_tag::any so oneDNN picks
// its fastest blocked layout, with a cached reorder from / to PyTorch's OIHW.
#include <optional>

#include "backend/cpu/dnnl_check.h"
#include "backend/cpu/onednn_ops.h"

namespace dp::cpu {
namespace {

using dnnl::memory;
using tag = memory::format_tag;
constexpr auto f32 = memory::data_type::f32;

struct ConvDescs {
  memory::desc src, weights_any, weights_oihw, dst;
  memory::dims strides, pad;
};

ConvDescs conv_descs(const Conv2dGeometry& g) {
  memory::dims src{g.n, g.c_in, g.h, g.w};
  memory::dims wei{g.c_out, g.c_in, g.kernel, g.kernel};
  memory::dims dst{g.n, g.c_out, g.out_h(), g.out_w()};
  return {memory::desc(src, f32, tag::nhwc),
          memory::desc(wei, f32, tag::any),
          memory::desc(wei, f32, tag::oihw),
          memory::desc(dst, f32, tag::nhwc),
          {g.stride, g.stride},
          {g.pad, g.pad}};
}

CacheKey conv_key(const Conv2dGeometry& g) {
  return {g.n, g.h, g.w, g.c_in, g.c_out, g.kernel, g.stride, g.pad, 0, 0};
}

dnnl::convolution_forward::primitive_desc forward_pd(const ConvDescs& d,
                                                     const dnnl::engine& engine) {
  dnnl::convolution_forward::desc desc(dnnl::prop_kind::forward_training,
                                       dnnl::algorithm::convolution_direct, d.src, d.weights_any,
                                       d.dst, d.strides, d.pad, d.pad);
  return {desc, user_scratchpad_attr(), engine};
}

void check_geometry(const Conv2dGeometry& g, const Tensor* x, const Tensor* w) {
  DP_CHECK(g.kernel > 0 && g.stride > 0 && g.pad >= 0 && g.out_h() > 0 && g.out_w() > 0,
           "bad conv geometry k={} s={} p={} on {}x{}", g.kernel, g.stride, g.pad, g.h, g.w);
  if (x)
    DP_CHECK(x->shape() == (Shape{g.n, g.h, g.w, g.c_in}), "conv input {} does not match geometry",
             to_string(x->shape()));
  if (w)
    DP_CHECK(w->shape() == (Shape{g.c_out, g.c_in, g.kernel, g.kernel}),
             "conv weight {} does not match geometry", to_string(w->shape()));
}

// A user-layout weight memory plus, when the kernel wants another layout, an owned buffer in
// that layout and the reorder between them.
struct WeightsInKernelLayout {
  memory user, kernel;
  std::optional<dnnl::reorder> reorder;

  WeightsInKernelLayout(DnnlContext& ctx, const memory::desc& user_md,
                        const memory::desc& kernel_md, bool user_is_source) {
    user = ctx.unbound(user_md);
    if (kernel_md == user_md) {
      kernel = user;
    } else {
      kernel = memory(kernel_md, ctx.engine);  // owned, allocated once per cache entry
      reorder = user_is_source ? dnnl::reorder(user, kernel) : dnnl::reorder(kernel, user);
    }
  }
};

}  // namespace

struct OnednnConv::Forward {
  dnnl::convolution_forward prim;
  memory src, dst, scratch;
  WeightsInKernelLayout weights;
};

struct OnednnConv::BackwardData {
  dnnl::convolution_backward_data prim;
  memory diff_src, diff_dst, scratch;
  WeightsInKernelLayout weights;
};

struct OnednnConv::BackwardWeights {
  dnnl::convolution_backward_weights prim;
  memory src, diff_dst, scratch;
  WeightsInKernelLayout diff_weights;
};

OnednnConv::OnednnConv(DnnlContext& ctx) : ctx_(ctx) {}
OnednnConv::~OnednnConv() = default;

void OnednnConv::forward(const Conv2dGeometry& g, const Tensor& x, const Tensor& w, Tensor& y) {
  check_geometry(g, &x, &w);
  y.ensure({g.n, g.out_h(), g.out_w(), g.c_out});
  with_dnnl("conv2d_forward", [&] {
    Forward& e = fwd_.get(conv_key(g), [&] {
      ConvDescs d = conv_descs(g);
      auto pd = forward_pd(d, ctx_.engine);
      return Forward{dnnl::convolution_forward(pd), ctx_.unbound(pd.src_desc()),
                     ctx_.unbound(pd.dst_desc()), ctx_.unbound(pd.scratchpad_desc()),
                     WeightsInKernelLayout(ctx_, d.weights_oihw, pd.weights_desc(), true)};
    });
    e.src.set_data_handle(handle(x));
    e.dst.set_data_handle(y.data());
    e.weights.user.set_data_handle(handle(w));
    ctx_.bind_scratchpad(e.scratch);
    if (e.weights.reorder)
      e.weights.reorder->execute(ctx_.stream, e.weights.user, e.weights.kernel);
    e.prim.execute(ctx_.stream, {{DNNL_ARG_SRC, e.src},
                                 {DNNL_ARG_WEIGHTS, e.weights.kernel},
                                 {DNNL_ARG_DST, e.dst},
                                 {DNNL_ARG_SCRATCHPAD, e.scratch}});
    ctx_.stream.wait();
  });
}

void OnednnConv::backward_data(const Conv2dGeometry& g, const Tensor& w, const Tensor& dy,
                               Tensor& dx) {
  check_geometry(g, nullptr, &w);
  DP_CHECK(dy.shape() == (Shape{g.n, g.out_h(), g.out_w(), g.c_out}),
           "conv output gradient {} does not match geometry", to_string(dy.shape()));
  dx.ensure({g.n, g.h, g.w, g.c_in});
  with_dnnl("conv2d_backward (data)", [&] {
    BackwardData& e = bwd_data_.get(conv_key(g), [&] {
      ConvDescs d = conv_descs(g);
      auto hint = forward_pd(d, ctx_.engine);
      dnnl::convolution_backward_data::desc desc(dnnl::algorithm::convolution_direct, d.src,
                                                 d.weights_any, d.dst, d.strides, d.pad, d.pad);
      dnnl::convolution_backward_data::primitive_desc pd(desc, user_scratchpad_attr(), ctx_.engine,
                                                         hint);
      return BackwardData{dnnl::convolution_backward_data(pd), ctx_.unbound(pd.diff_src_desc()),
                          ctx_.unbound(pd.diff_dst_desc()), ctx_.unbound(pd.scratchpad_desc()),
                          WeightsInKernelLayout(ctx_, d.weights_oihw, pd.weights_desc(), true)};
    });
    e.diff_src.set_data_handle(dx.data());
    e.diff_dst.set_data_handle(handle(dy));
    e.weights.user.set_data_handle(handle(w));
    ctx_.bind_scratchpad(e.scratch);
    if (e.weights.reorder)
      e.weights.reorder->execute(ctx_.stream, e.weights.user, e.weights.kernel);
    e.prim.execute(ctx_.stream, {{DNNL_ARG_DIFF_SRC, e.diff_src},
                                 {DNNL_ARG_WEIGHTS, e.weights.kernel},
                                 {DNNL_ARG_DIFF_DST, e.diff_dst},
                                 {DNNL_ARG_SCRATCHPAD, e.scratch}});
    ctx_.stream.wait();
  });
}

void OnednnConv::backward_weights(const Conv2dGeometry& g, const Tensor& x, const Tensor& dy,
                                  Tensor& dw) {
  check_geometry(g, &x, nullptr);
  DP_CHECK(dy.shape() == (Shape{g.n, g.out_h(), g.out_w(), g.c_out}),
           "conv output gradient {} does not match geometry", to_string(dy.shape()));
  dw.ensure({g.c_out, g.c_in, g.kernel, g.kernel});
  with_dnnl("conv2d_backward (weights)", [&] {
    BackwardWeights& e = bwd_weights_.get(conv_key(g), [&] {
      ConvDescs d = conv_descs(g);
      auto hint = forward_pd(d, ctx_.engine);
      dnnl::convolution_backward_weights::desc desc(dnnl::algorithm::convolution_direct, d.src,
                                                    d.weights_any, d.dst, d.strides, d.pad, d.pad);
      dnnl::convolution_backward_weights::primitive_desc pd(desc, user_scratchpad_attr(),
                                                            ctx_.engine, hint);
      return BackwardWeights{
          dnnl::convolution_backward_weights(pd), ctx_.unbound(pd.src_desc()),
          ctx_.unbound(pd.diff_dst_desc()), ctx_.unbound(pd.scratchpad_desc()),
          WeightsInKernelLayout(ctx_, d.weights_oihw, pd.diff_weights_desc(), false)};
    });
    e.src.set_data_handle(handle(x));
    e.diff_dst.set_data_handle(handle(dy));
    e.diff_weights.user.set_data_handle(dw.data());
    ctx_.bind_scratchpad(e.scratch);
    e.prim.execute(ctx_.stream, {{DNNL_ARG_SRC, e.src},
                                 {DNNL_ARG_DIFF_DST, e.diff_dst},
                                 {DNNL_ARG_DIFF_WEIGHTS, e.diff_weights.kernel},
                                 {DNNL_ARG_SCRATCHPAD, e.scratch}});
    if (e.diff_weights.reorder)
      e.diff_weights.reorder->execute(ctx_.stream, e.diff_weights.kernel, e.diff_weights.user);
    ctx_.stream.wait();
  });
}

}  // namespace dp::cpu
