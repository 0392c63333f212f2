// Batch normalisation on oneDNN (in the input's layout, NHWC or nChw16c; separate scale and
// shift, optional fused ReLU). The output and the input gradient keep that layout. oneDNN
// does not track running statistics, so the PyTorch update (unbiased variance) is done here.
#include "backend/cpu/activation_layout.h"
#include "backend/cpu/batchnorm_statistics.h"
#include "backend/cpu/dnnl_check.h"
#include "backend/cpu/onednn_ops.h"
#include "backend/operand_checks.h"

namespace dp::cpu {
namespace {

using dnnl::memory;
using flags = dnnl::normalization_flags;
constexpr auto f32 = memory::data_type::f32;

// x's layout and type, which y, dy and dx share. 16 channels are described as nChw16c (the
// same bytes as NHWC): oneDNN's blocked batch norm is faster than its NHWC one there (see
// tests/bench/results/code-measurements-backend.md). bf16 data has f32 statistics, scale and
// shift, and is computed in f32.
memory::desc data_desc(const BatchNormGeometry& g, const Tensor& x) {
  const Layout layout = nhwc_is_blocked(g.c) ? Layout::nchw16c : x.layout();
  return activation_desc(g.n, g.h, g.w, g.c, layout, x.dtype());
}

// gamma, beta and their gradients: one f32 per channel (use_scale / use_shift layout).
memory::desc channel_desc(const BatchNormGeometry& g) {
  return memory::desc({g.c}, f32, memory::format_tag::x);
}

CacheKey bn_key(const BatchNormGeometry& g, const Tensor& x) {
  return {g.n, g.h, g.w, g.c, g.fuse_relu, float_bits(g.eps), static_cast<int64_t>(x.layout()),
          static_cast<int64_t>(x.dtype()), 0, 0};
}

flags train_flags(const BatchNormGeometry& g) {
  return flags::use_scale | flags::use_shift | (g.fuse_relu ? flags::fuse_norm_relu : flags::none);
}

dnnl::batch_normalization_forward::primitive_desc train_pd(const BatchNormGeometry& g,
                                                           const Tensor& x,
                                                           const dnnl::engine& engine) {
  dnnl::batch_normalization_forward::desc desc(dnnl::prop_kind::forward_training,
                                               data_desc(g, x), g.eps, train_flags(g));
  return {desc, user_scratchpad_attr(), engine};
}

}  // namespace

struct OnednnBatchNorm::Train {
  dnnl::batch_normalization_forward prim;
  memory src, dst, scale, shift, mean, var, workspace, scratch;
  size_t workspace_bytes;
};

struct OnednnBatchNorm::Inference {
  dnnl::batch_normalization_forward prim;
  memory src, dst, scale, shift, mean, var, scratch;
};

struct OnednnBatchNorm::Backward {
  dnnl::batch_normalization_backward prim;
  memory src, diff_dst, scale, shift, mean, var, workspace, diff_src, diff_scale, diff_shift,
      scratch;
};

OnednnBatchNorm::OnednnBatchNorm(DnnlContext& ctx) : ctx_(ctx) {}
OnednnBatchNorm::~OnednnBatchNorm() = default;

void OnednnBatchNorm::forward_train(const BatchNormGeometry& g, const Tensor& x,
                                    const Tensor& gamma, const Tensor& beta, Tensor& running_mean,
                                    Tensor& running_var, Tensor& y, Tensor& saved_mean,
                                    Tensor& saved_var, Tensor& workspace) {
  check_batchnorm_operands(g, x, {&gamma, &beta, &running_mean, &running_var});
  DP_CHECK(g.n * g.h * g.w > 1, "batchnorm training needs more than one value per channel");
  y.ensure(x.shape(), x.dtype());
  saved_mean.ensure({g.c});
  saved_var.ensure({g.c});
  with_dnnl("batchnorm_forward_train", [&] {
    Train& e = train_.get(bn_key(g, x), [&] {
      auto pd = train_pd(g, x, ctx_.engine);
      return Train{dnnl::batch_normalization_forward(pd), ctx_.unbound(pd.src_desc()),
                   ctx_.unbound(pd.dst_desc()),           ctx_.unbound(channel_desc(g)),
                   ctx_.unbound(channel_desc(g)),         ctx_.unbound(pd.mean_desc()),
                   ctx_.unbound(pd.variance_desc()),      ctx_.unbound(pd.workspace_desc()),
                   ctx_.unbound(pd.scratchpad_desc()),    pd.workspace_desc().get_size()};
    });
    e.src.set_data_handle(handle(x));
    e.dst.set_data_handle(y.data<void>());
    e.scale.set_data_handle(handle(gamma));
    e.shift.set_data_handle(handle(beta));
    e.mean.set_data_handle(saved_mean.data());
    e.var.set_data_handle(saved_var.data());
    ctx_.bind_scratchpad(e.scratch);
    std::unordered_map<int, memory> args{
        {DNNL_ARG_SRC, e.src},           {DNNL_ARG_DST, e.dst},   {DNNL_ARG_SCALE, e.scale},
        {DNNL_ARG_SHIFT, e.shift},       {DNNL_ARG_MEAN, e.mean}, {DNNL_ARG_VARIANCE, e.var},
        {DNNL_ARG_SCRATCHPAD, e.scratch}};
    if (g.fuse_relu) {
      workspace.ensure({static_cast<int64_t>(e.workspace_bytes)}, DType::u8);
      e.workspace.set_data_handle(workspace.data<void>());
      args.emplace(DNNL_ARG_WORKSPACE, e.workspace);
    }
    e.prim.execute(ctx_.stream, args);
    ctx_.stream.wait();
  });
  y.set_layout(x.layout());
  update_running_statistics(g, saved_mean, saved_var, running_mean, running_var);
}

void OnednnBatchNorm::forward_inference(const BatchNormGeometry& g, const Tensor& x,
                                        const Tensor& gamma, const Tensor& beta,
                                        const Tensor& running_mean, const Tensor& running_var,
                                        Tensor& y) {
  check_batchnorm_operands(g, x, {&gamma, &beta, &running_mean, &running_var});
  y.ensure(x.shape(), x.dtype());
  with_dnnl("batchnorm_forward_inference", [&] {
    Inference& e = infer_.get(bn_key(g, x), [&] {
      dnnl::batch_normalization_forward::desc desc(dnnl::prop_kind::forward_inference,
                                                   data_desc(g, x), g.eps,
                                                   train_flags(g) | flags::use_global_stats);
      dnnl::batch_normalization_forward::primitive_desc pd(desc, user_scratchpad_attr(),
                                                           ctx_.engine);
      return Inference{dnnl::batch_normalization_forward(pd), ctx_.unbound(pd.src_desc()),
                       ctx_.unbound(pd.dst_desc()),           ctx_.unbound(channel_desc(g)),
                       ctx_.unbound(channel_desc(g)),         ctx_.unbound(pd.mean_desc()),
                       ctx_.unbound(pd.variance_desc()),      ctx_.unbound(pd.scratchpad_desc())};
    });
    e.src.set_data_handle(handle(x));
    e.dst.set_data_handle(y.data<void>());
    e.scale.set_data_handle(handle(gamma));
    e.shift.set_data_handle(handle(beta));
    e.mean.set_data_handle(handle(running_mean));
    e.var.set_data_handle(handle(running_var));
    ctx_.bind_scratchpad(e.scratch);
    e.prim.execute(ctx_.stream, {{DNNL_ARG_SRC, e.src},
                                 {DNNL_ARG_DST, e.dst},
                                 {DNNL_ARG_SCALE, e.scale},
                                 {DNNL_ARG_SHIFT, e.shift},
                                 {DNNL_ARG_MEAN, e.mean},
                                 {DNNL_ARG_VARIANCE, e.var},
                                 {DNNL_ARG_SCRATCHPAD, e.scratch}});
    ctx_.stream.wait();
  });
  y.set_layout(x.layout());
}

OnednnBatchNorm::Backward OnednnBatchNorm::make_backward(const BatchNormGeometry& g,
                                                         const Tensor& x) const {
  auto hint = train_pd(g, x, ctx_.engine);
  dnnl::batch_normalization_backward::desc desc(dnnl::prop_kind::backward, data_desc(g, x),
                                                data_desc(g, x), g.eps, train_flags(g));
  dnnl::batch_normalization_backward::primitive_desc pd(desc, user_scratchpad_attr(),
                                                        ctx_.engine, hint);
  return Backward{dnnl::batch_normalization_backward(pd), ctx_.unbound(pd.src_desc()),
                  ctx_.unbound(pd.diff_dst_desc()),       ctx_.unbound(channel_desc(g)),
                  ctx_.unbound(channel_desc(g)),          ctx_.unbound(pd.mean_desc()),
                  ctx_.unbound(pd.variance_desc()),       ctx_.unbound(pd.workspace_desc()),
                  ctx_.unbound(pd.diff_src_desc()),       ctx_.unbound(channel_desc(g)),
                  ctx_.unbound(channel_desc(g)),          ctx_.unbound(pd.scratchpad_desc())};
}

void OnednnBatchNorm::backward(const BatchNormGeometry& g, const Tensor& x, const Tensor& dy,
                               const Tensor& gamma, const Tensor& beta, const Tensor& saved_mean,
                               const Tensor& saved_var, const Tensor& workspace, Tensor& dx,
                               Tensor& dgamma, Tensor& dbeta) {
  check_batchnorm_operands(g, x, {&gamma, &beta, &saved_mean, &saved_var});
  DP_CHECK(dy.shape() == x.shape() && dy.layout() == x.layout() && dy.dtype() == x.dtype(),
           "batchnorm output gradient {} does not match input {} in shape, layout or type",
           to_string(dy.shape()), to_string(x.shape()));
  dx.ensure(x.shape(), x.dtype());
  dgamma.ensure({g.c});
  dbeta.ensure({g.c});
  with_dnnl("batchnorm_backward", [&] {
    Backward& e = bwd_.get(bn_key(g, x), [&] { return make_backward(g, x); });
    e.src.set_data_handle(handle(x));
    e.diff_dst.set_data_handle(handle(dy));
    e.scale.set_data_handle(handle(gamma));
    e.shift.set_data_handle(handle(beta));  // oneDNN's backward lists the shift as an input
    e.mean.set_data_handle(handle(saved_mean));
    e.var.set_data_handle(handle(saved_var));
    e.diff_src.set_data_handle(dx.data<void>());
    e.diff_scale.set_data_handle(dgamma.data());
    e.diff_shift.set_data_handle(dbeta.data());
    ctx_.bind_scratchpad(e.scratch);
    std::unordered_map<int, memory> args{{DNNL_ARG_SRC, e.src},
                                         {DNNL_ARG_DIFF_DST, e.diff_dst},
                                         {DNNL_ARG_SCALE, e.scale},
                                         {DNNL_ARG_SHIFT, e.shift},
                                         {DNNL_ARG_MEAN, e.mean},
                                         {DNNL_ARG_VARIANCE, e.var},
                                         {DNNL_ARG_DIFF_SRC, e.diff_src},
                                         {DNNL_ARG_DIFF_SCALE, e.diff_scale},
                                         {DNNL_ARG_DIFF_SHIFT, e.diff_shift},
                                         {DNNL_ARG_SCRATCHPAD, e.scratch}};
    if (g.fuse_relu) {
      DP_CHECK(workspace.bytes() >= e.workspace.get_desc().get_size(),
               "batchnorm workspace is {} bytes; the fused ReLU forward must run first",
               workspace.bytes());
      e.workspace.set_data_handle(handle(workspace));
      args.emplace(DNNL_ARG_WORKSPACE, e.workspace);
    }
    e.prim.execute(ctx_.stream, args);
    ctx_.stream.wait();
  });
  dx.set_layout(x.layout());
}

}  // namespace dp::cpu
