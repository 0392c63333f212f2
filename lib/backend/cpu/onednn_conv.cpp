// Convolution on oneDNN: forward, backward-data and backward-weights primitives, one cache
// entry per geometry. Weights use format_tag::any so oneDNN picks its fastest blocked layout,
// with a cached reorder from / to PyTorch's OIHW (the weights change every training step, so
// the reorder runs on every call, a small part of a step; measurements:
// tests/bench/results/code-measurements-backend.md, 'onednn_conv.cpp: weight reorders').
//
// Activations come and go in the layout their tensors carry (activation_layout.h): NHWC, or
// nChw16c inside stages of 32+ channels. Two algorithms:
// - direct: oneDNN's brgconv / jit kernels read and write either layout without a reorder;
// - Winograd F(4x4, 3x3) for 3x3 stride-1 convolutions (the default; DPTRAIN_CPU_CONV=direct
//   turns it off): about 2x fewer multiplies, but oneDNN implements it only on nChw16c, so
//   NHWC operands are reordered in and out. Results differ from direct convolution by
//   rounding only (tests/oracle; see tests/bench/results/code-measurements-backend.md).
//   oneDNN's kernel wants input channels in whole blocks of 16; other counts (airbench94's 24
//   whitened channels) run padded: the blocked buffers already hold the channels up to the
//   next 16 as zeros, and the primitive is told they are real.
// - bf16 (--precision bf16, on CPUs with AVX512-BF16 or AMX): direct convolution on bf16
//   input, weights and output gradient, products accumulated in f32. f32 operands are rounded
//   to bf16 once, on their way into the kernel (the reorders that change layout also change
//   type); the output and the input gradient are written in their tensors' type (bf16
//   activations: rounded once from the f32 accumulator), the weight gradient in f32. oneDNN
//   has no bf16 Winograd; a shape with only a reference bf16 kernel falls back to f32.
#include <cstring>
#include <optional>
#include <vector>

#include "backend/cpu/activation_layout.h"
#include "backend/cpu/dnnl_check.h"
#include "backend/cpu/onednn_ops.h"
#include "backend/operand_checks.h"
#include "core/env_switch.h"
#include "core/log.h"

namespace dp::cpu {
namespace {

using dnnl::memory;
using tag = memory::format_tag;
constexpr auto f32 = memory::data_type::f32;
constexpr auto bf16 = memory::data_type::bf16;

// How a geometry runs: direct, Winograd, Winograd over input channels padded to a block, or
// direct on bf16 operands.
enum class ConvAlgo { direct, winograd, winograd_padded, direct_bf16 };

int64_t padded_channels(int64_t c) {
  return (c + kChannelBlock - 1) / kChannelBlock * kChannelBlock;
}

struct ConvDescs {
  memory::desc src, weights_any, weights_oihw, dst;
  // What backward reads and writes in dst's and src's place (in bf16 the output gradient is
  // read in bf16 and the input gradient written in the input's type).
  memory::desc diff_dst, diff_src;
  // winograd_padded only: src and weights over the real input channels in the primitive's
  // blocked layouts: the same bytes as src / weights_any, whose extra channels are the pad.
  std::optional<memory::desc> src_real, weights_real;
  memory::dims strides, pad_before, pad_after;  // pad_after: Conv2dGeometry::pad_after
};

// The layouts (and element types) the caller's activations are described to oneDNN in. A
// 16-channel NHWC tensor is described as nChw16c where the other side is blocked, so one
// blocked kernel reads and writes both without a reorder; between two NHWC sides it stays NHWC
// (brgconv's NHWC kernels are the faster ones at 16 channels). The output gradient has the
// output's type; the input gradient has its own (a bf16 activation gradient of f32 images).
struct ConvLayouts {
  Layout src, dst;
  DType src_type, dst_type, diff_src_type;

  ConvLayouts(const Conv2dGeometry& g, const Tensor& x, Layout y, DType y_type, DType dx_type)
      : src(x.layout()), dst(y), src_type(x.dtype()), dst_type(y_type), diff_src_type(dx_type) {
    if (nhwc_is_blocked(g.c_in) && dst == Layout::nchw16c) src = Layout::nchw16c;
    if (nhwc_is_blocked(g.c_out) && src == Layout::nchw16c) dst = Layout::nchw16c;
  }
  memory::desc user_src(const Conv2dGeometry& g) const {
    return activation_desc(g.n, g.h, g.w, g.c_in, src, src_type);
  }
  memory::desc user_dst(const Conv2dGeometry& g) const {
    return activation_desc(g.n, g.out_h(), g.out_w(), g.c_out, dst, dst_type);
  }
  memory::desc user_diff_src(const Conv2dGeometry& g) const {
    return activation_desc(g.n, g.h, g.w, g.c_in, src, diff_src_type);
  }
  bool both_blocked() const { return src == Layout::nchw16c && dst == Layout::nchw16c; }
  bool all_f32() const {
    return src_type == DType::f32 && dst_type == DType::f32 && diff_src_type == DType::f32;
  }
};

// bf16: the kernel picks the layouts of its operands and results (any); the reorders to and
// from the caller's layouts convert the type too. Results come in the caller's types.
ConvDescs conv_descs_bf16(const Conv2dGeometry& g, const ConvLayouts& l) {
  memory::dims wei{g.c_out, g.c_in, g.kernel, g.kernel};
  return {memory::desc({g.n, g.c_in, g.h, g.w}, bf16, tag::any),
          memory::desc(wei, bf16, tag::any),
          memory::desc(wei, f32, tag::oihw),
          memory::desc({g.n, g.c_out, g.out_h(), g.out_w()}, dnnl_type(l.dst_type), tag::any),
          memory::desc({g.n, g.c_out, g.out_h(), g.out_w()}, bf16, tag::any),
          memory::desc({g.n, g.c_in, g.h, g.w}, dnnl_type(l.diff_src_type), tag::any),
          std::nullopt,
          std::nullopt,
          {g.stride, g.stride},
          {g.pad, g.pad},
          {g.pad_after(), g.pad_after()}};
}

// The descriptors the primitive is asked for: Winograd picks its own activation layout (any);
// f32 direct convolution takes the caller's f32 tensors where both sides share one layout,
// else its own (bf16 tensors of a shape that fell back to f32 are reordered to and from f32).
ConvDescs conv_descs(const Conv2dGeometry& g, const ConvLayouts& l, ConvAlgo algo) {
  if (algo == ConvAlgo::direct_bf16) return conv_descs_bf16(g, l);
  memory::dims wei{g.c_out, g.c_in, g.kernel, g.kernel};
  const bool own = algo != ConvAlgo::direct || l.src != l.dst || !l.all_f32();
  const memory::desc src =
      own ? memory::desc({g.n, g.c_in, g.h, g.w}, f32, tag::any) : l.user_src(g);
  const memory::desc dst =
      own ? memory::desc({g.n, g.c_out, g.out_h(), g.out_w()}, f32, tag::any) : l.user_dst(g);
  ConvDescs d{src,
              memory::desc(wei, f32, tag::any),
              memory::desc(wei, f32, tag::oihw),
              dst,
              /*diff_dst=*/dst,
              /*diff_src=*/src,
              std::nullopt,
              std::nullopt,
              {g.stride, g.stride},
              {g.pad, g.pad},
              {g.pad_after(), g.pad_after()}};
  if (algo == ConvAlgo::winograd_padded) {
    const int64_t cp = padded_channels(g.c_in);
    d.src = d.diff_src = memory::desc({g.n, cp, g.h, g.w}, f32, tag::nChw16c);
    d.weights_any = memory::desc({g.c_out, cp, g.kernel, g.kernel}, f32, tag::OIhw16i16o);
    d.src_real = memory::desc({g.n, g.c_in, g.h, g.w}, f32, tag::nChw16c);
    d.weights_real = memory::desc(wei, f32, tag::OIhw16i16o);
  }
  return d;
}

// `with_data`: a backward entry that computes the data gradient too.
CacheKey conv_key(const Conv2dGeometry& g, const ConvLayouts& l, bool with_data = false) {
  const int64_t layouts = static_cast<int64_t>(l.src) * 2 + static_cast<int64_t>(l.dst);
  const auto type = [](DType t) { return static_cast<int64_t>(t); };  // each < 4
  const int64_t types = (type(l.src_type) * 4 + type(l.dst_type)) * 4 + type(l.diff_src_type);
  const int64_t after_and_data = g.pad_after() * 2 + with_data;  // pad_after() >= 0
  return {g.n,      g.h,      g.w,   g.c_in,         g.c_out,
          g.kernel, g.stride, g.pad, after_and_data, layouts * 64 + types};
}

dnnl::algorithm algorithm_for(ConvAlgo algo) {
  return algo == ConvAlgo::winograd || algo == ConvAlgo::winograd_padded
             ? dnnl::algorithm::convolution_winograd
             : dnnl::algorithm::convolution_direct;
}

// oneDNN's reference kernels are orders of magnitude slower than f32's optimised ones: a bf16
// shape that has only those is refused here, so that it runs in f32.
template <typename PrimitiveDesc>
PrimitiveDesc optimised_only(PrimitiveDesc pd, ConvAlgo algo) {
  if (algo == ConvAlgo::direct_bf16 && std::strncmp(pd.impl_info_str(), "ref", 3) == 0)
    throw dnnl::error(dnnl_unimplemented, "bf16 convolution: reference kernel only");
  return pd;
}

dnnl::convolution_forward::primitive_desc forward_pd(const ConvDescs& d, ConvAlgo algo,
                                                     const dnnl::engine& engine) {
  dnnl::convolution_forward::desc desc(dnnl::prop_kind::forward_training, algorithm_for(algo),
                                       d.src, d.weights_any, d.dst, d.strides, d.pad_before,
                                       d.pad_after);
  return optimised_only(
      dnnl::convolution_forward::primitive_desc(desc, user_scratchpad_attr(), engine), algo);
}

// A tensor in the caller's layout plus, when the kernel wants another layout, an owned buffer
// in that layout and the reorder between them (toward the kernel for inputs, back for outputs).
// `arg` is what the primitive is given: the kernel buffer, or with `real_md` (padded
// Winograd) the same bytes described with the input channels padded up to kernel_md's count.
struct InKernelLayout {
  memory user, kernel, arg;
  std::optional<dnnl::reorder> reorder;

  InKernelLayout(DnnlContext& ctx, const memory::desc& user_md, const memory::desc& kernel_md,
                 bool user_is_source, const std::optional<memory::desc>& real_md = std::nullopt) {
    user = ctx.unbound(user_md);
    if (!real_md && kernel_md == user_md) {
      kernel = arg = user;
      return;
    }
    kernel = memory(real_md ? *real_md : kernel_md, ctx.engine);  // owned, once per cache entry
    arg = kernel;
    if (real_md) {
      DP_CHECK(real_md->get_size() == kernel_md.get_size(), "padded conv operand: sizes differ");
      // The pad channels are read as real input, so they must be zero: oneDNN's reorders write
      // a blocked pad as zero, and zeroing once here keeps that from being the only guarantee.
      std::memset(kernel.get_data_handle(), 0, kernel_md.get_size());
      arg = memory(kernel_md, ctx.engine, kernel.get_data_handle());
    }
    reorder = user_is_source ? dnnl::reorder(user, kernel) : dnnl::reorder(kernel, user);
  }
  void to_kernel(dnnl::stream& s) {
    if (reorder) reorder->execute(s, user, kernel);
  }
  void to_user(dnnl::stream& s) {
    if (reorder) reorder->execute(s, kernel, user);
  }
};

// Winograd where it is enabled and oneDNN has a kernel for the shape, on layers wide enough to
// pay for the reorders around it: 64+ channels on NHWC operands, 32+ on nChw16c, which need
// none (tests/backend/bench_conv; see tests/bench/results/code-measurements-backend.md). Maps
// down to kWinogradMinMap (3x3: one 4x4 output tile, 36 multiplies per output pixel for
// direct's 81).
bool winograd_wanted(const Conv2dGeometry& g, const ConvLayouts& l) {
  const int64_t min_channels = l.both_blocked() ? 32 : 64;
  return g.kernel == 3 && g.stride == 1 && g.pad == 1 && g.c_in % kChannelBlock == 0 &&
         g.c_out % kChannelBlock == 0 && g.c_in >= min_channels && g.c_out >= min_channels &&
         g.h >= kWinogradMinMap && g.w >= kWinogradMinMap;
}

// Input channels off the block (a NHWC source, since blocked layouts need whole blocks) into
// a blocked output: the direct kernel reorders that source into a zero-padded blocked buffer
// anyway, so Winograd on the padded channels costs no extra reorder; taken where the pad adds
// at most a third to the work (24 -> 32; tests/bench/results/code-measurements-backend.md).
bool padded_winograd_wanted(const Conv2dGeometry& g, const ConvLayouts& l) {
  const int64_t cp = padded_channels(g.c_in);
  return g.kernel == 3 && g.stride == 1 && g.pad == 1 && g.c_in % kChannelBlock != 0 && cp >= 32 &&
         4 * g.c_in >= 3 * cp && g.c_out % kChannelBlock == 0 && g.c_out >= 32 &&
         l.dst == Layout::nchw16c && g.h >= 8 && g.w >= 8;
}

// bf16 backward-data of a stride-1 convolution with "same" padding (pad = (k - 1) / 2) is the
// forward convolution of the output gradient with the weights transposed (input <-> output
// channels) and flipped in both spatial directions (padded pad before, pad + trim after: a
// trimmed output's missing rows read as zero), and oneDNN's bf16 forward kernels (brgconv) run
// it faster than its bf16 backward-data kernels on airbench94's layers (measurements:
// tests/bench/results/code-measurements-backend.md, 'onednn_conv.cpp: bf16 dx as forward').
bool data_grad_as_forward(const Conv2dGeometry& g) {
  return g.stride == 1 && g.kernel % 2 == 1 && g.pad == (g.kernel - 1) / 2;
}

// flipped[c][o][kh][kw] = w[o][c][k-1-kh][k-1-kw] (OIHW both).
void transpose_and_flip(const Conv2dGeometry& g, const float* w, float* flipped) {
  const int64_t k = g.kernel, taps = k * k;
  for (int64_t o = 0; o < g.c_out; ++o)
    for (int64_t c = 0; c < g.c_in; ++c)
      for (int64_t t = 0; t < taps; ++t)
        flipped[(c * g.c_out + o) * taps + (taps - 1 - t)] = w[(o * g.c_in + c) * taps + t];
}

ConvAlgo wanted_f32_algo(const Conv2dGeometry& g, const ConvLayouts& l, bool winograd_enabled) {
  // oneDNN 2.6's Winograd accepts asymmetric padding but its backward-data is then wrong
  // (CpuConv.TrimmedOutputIsTheWholeMapLessItsLastRowAndColumn caught it).
  if (!winograd_enabled || g.trim != 0) return ConvAlgo::direct;
  if (winograd_wanted(g, l)) return ConvAlgo::winograd;
  if (padded_winograd_wanted(g, l)) return ConvAlgo::winograd_padded;
  return ConvAlgo::direct;
}

}  // namespace

bool conv_winograd_from_environment() {
  return !env_switch("DPTRAIN_CPU_CONV", "winograd", "direct");
}

bool conv_trim_from_environment() { return !env_switch("DPTRAIN_CPU_CONV_TRIM", "on", "off"); }

struct OnednnConv::Forward {
  dnnl::convolution_forward prim;
  InKernelLayout src, dst;
  memory scratch;
  InKernelLayout weights;
  bool in_f32 = false;  // asked in bf16, run in f32 (build_with_fallback)
};

// Backward data and weights share the gradient of the output: with blocked activations it is
// reordered once for both.
struct OnednnConv::Backward {
  std::optional<dnnl::convolution_backward_data> data;  // absent when no dx is wanted
  dnnl::convolution_backward_weights weights_prim;
  InKernelLayout diff_dst, src;
  std::optional<InKernelLayout> diff_src, weights;
  memory data_scratch, weights_scratch;
  InKernelLayout diff_weights;
  bool in_f32 = false;  // asked in bf16, run in f32 (build_with_fallback)

  // The primitives of one geometry and algorithm; backward data only `with_data`.
  static Backward build(DnnlContext& ctx, const Conv2dGeometry& g, const ConvLayouts& layouts,
                        ConvAlgo algo, bool with_data);
  // dx from w and the output gradient, which diff_dst already holds in the kernel's layout.
  void backward_data(DnnlContext& ctx, const Tensor& w, Tensor& dx);
  // dw from x and the same output gradient.
  void backward_weights(DnnlContext& ctx, const Tensor& x, Tensor& dw);
};

OnednnConv::OnednnConv(DnnlContext& ctx, bool winograd, bool bf16)
    : ctx_(ctx), winograd_(winograd), bf16_(bf16), weight_grad_gemm_(ctx) {}
OnednnConv::~OnednnConv() = default;

// Builds with the first algorithm that has a kernel for this shape on this CPU: bf16 where
// enabled, then Winograd where enabled and wanted, then f32 direct. The entry records whether a
// pass asked in bf16 runs in f32 (`in_f32`); that says so in the log once per cache entry
// (`pass` names it).
template <typename Build>
static auto build_with_fallback(const Conv2dGeometry& g, const ConvLayouts& l, bool winograd,
                                bool bf16, const char* pass, Build&& build) {
  const auto built = [&](ConvAlgo algo) {
    auto entry = build(algo);
    entry.in_f32 = bf16 && algo != ConvAlgo::direct_bf16;
    return entry;
  };
  std::vector<ConvAlgo> candidates;
  if (bf16) candidates.push_back(ConvAlgo::direct_bf16);
  if (const ConvAlgo f32_algo = wanted_f32_algo(g, l, winograd); f32_algo != ConvAlgo::direct)
    candidates.push_back(f32_algo);
  for (ConvAlgo algo : candidates) {
    try {
      return built(algo);
    } catch (const dnnl::error&) {
      // no such kernel for this shape on this CPU: the next candidate
      if (algo == ConvAlgo::direct_bf16)
        log::info(
            "note: no optimised bf16 kernel for the {} of the convolution n{} {}x{} "
            "{}->{} k{} s{} p{} trim {} on this CPU: it runs in f32",
            pass, g.n, g.h, g.w, g.c_in, g.c_out, g.kernel, g.stride, g.pad, g.trim);
    }
  }
  return built(ConvAlgo::direct);
}

void OnednnConv::forward(const Conv2dGeometry& g, const Tensor& x, const Tensor& w, Tensor& y,
                         Layout y_layout) {
  check_conv_operands(g, x, w, nullptr);
  run_forward(g, x, w, y, y_layout, "forward");
}

void OnednnConv::run_forward(const Conv2dGeometry& g, const Tensor& x, const Tensor& w, Tensor& y,
                             Layout y_layout, const char* pass) {
  y.ensure({g.n, g.out_h(), g.out_w(), g.c_out}, y.dtype());
  const ConvLayouts layouts(g, x, y_layout, y.dtype(), x.dtype());
  with_dnnl("conv2d_forward", [&] {
    Forward& e = fwd_.get(conv_key(g, layouts), [&] {
      return build_with_fallback(g, layouts, winograd_, bf16_, pass, [&](ConvAlgo algo) {
        ConvDescs d = conv_descs(g, layouts, algo);
        auto pd = forward_pd(d, algo, ctx_.engine);
        return Forward{
            dnnl::convolution_forward(pd),
            InKernelLayout(ctx_, layouts.user_src(g), pd.src_desc(), true, d.src_real),
            InKernelLayout(ctx_, layouts.user_dst(g), pd.dst_desc(), false),
            ctx_.unbound(pd.scratchpad_desc()),
            InKernelLayout(ctx_, d.weights_oihw, pd.weights_desc(), true, d.weights_real)};
      });
    });
    bf16_passes_in_f32_ += e.in_f32;
    e.src.user.set_data_handle(handle(x));
    e.dst.user.set_data_handle(y.data<void>());
    e.weights.user.set_data_handle(handle(w));
    ctx_.bind_scratchpad(e.scratch);
    e.weights.to_kernel(ctx_.stream);
    e.src.to_kernel(ctx_.stream);
    e.prim.execute(ctx_.stream, {{DNNL_ARG_SRC, e.src.arg},
                                 {DNNL_ARG_WEIGHTS, e.weights.arg},
                                 {DNNL_ARG_DST, e.dst.arg},
                                 {DNNL_ARG_SCRATCHPAD, e.scratch}});
    e.dst.to_user(ctx_.stream);
    ctx_.stream.wait();
  });
  y.set_layout(y_layout);
}

OnednnConv::Backward OnednnConv::Backward::build(DnnlContext& ctx, const Conv2dGeometry& g,
                                                 const ConvLayouts& layouts, ConvAlgo algo,
                                                 bool with_data) {
  ConvDescs d = conv_descs(g, layouts, algo);
  auto hint = forward_pd(d, algo, ctx.engine);
  const dnnl::algorithm alg = algorithm_for(algo);
  // the weight gradient is f32 whatever the operands are
  const memory::desc diff_weights = algo == ConvAlgo::direct_bf16
                                        ? memory::desc(d.weights_any.dims(), f32, tag::any)
                                        : d.weights_any;
  dnnl::convolution_backward_weights::desc wdesc(alg, d.src, diff_weights, d.diff_dst, d.strides,
                                                 d.pad_before, d.pad_after);
  auto wpd = optimised_only(dnnl::convolution_backward_weights::primitive_desc(
                                wdesc, user_scratchpad_attr(), ctx.engine, hint),
                            algo);
  const memory::desc user_src = layouts.user_src(g);
  const memory::desc user_dst = layouts.user_dst(g);
  Backward b{std::nullopt,
             dnnl::convolution_backward_weights(wpd),
             InKernelLayout(ctx, user_dst, wpd.diff_dst_desc(), true),
             InKernelLayout(ctx, user_src, wpd.src_desc(), true, d.src_real),
             std::nullopt,
             std::nullopt,
             ctx.unbound(wpd.scratchpad_desc()),
             ctx.unbound(wpd.scratchpad_desc()),
             InKernelLayout(ctx, d.weights_oihw, wpd.diff_weights_desc(), false, d.weights_real)};
  if (with_data) {
    dnnl::convolution_backward_data::desc ddesc(alg, d.diff_src, d.weights_any, d.diff_dst,
                                                d.strides, d.pad_before, d.pad_after);
    auto dpd = optimised_only(dnnl::convolution_backward_data::primitive_desc(
                                  ddesc, user_scratchpad_attr(), ctx.engine, hint),
                              algo);
    // The shared reordered output gradient must suit both primitives.
    if (dpd.diff_dst_desc() != wpd.diff_dst_desc())
      throw dnnl::error(dnnl_unimplemented, "conv backward: diff_dst layouts differ");
    b.data.emplace(dpd);
    b.diff_src.emplace(ctx, layouts.user_diff_src(g), dpd.diff_src_desc(), false, d.src_real);
    b.weights.emplace(ctx, d.weights_oihw, dpd.weights_desc(), true, d.weights_real);
    b.data_scratch = ctx.unbound(dpd.scratchpad_desc());
  }
  return b;
}

void OnednnConv::Backward::backward_data(DnnlContext& ctx, const Tensor& w, Tensor& dx) {
  diff_src->user.set_data_handle(dx.data<void>());
  weights->user.set_data_handle(handle(w));
  ctx.bind_scratchpad(data_scratch);
  weights->to_kernel(ctx.stream);
  data->execute(ctx.stream, {{DNNL_ARG_DIFF_SRC, diff_src->arg},
                             {DNNL_ARG_WEIGHTS, weights->arg},
                             {DNNL_ARG_DIFF_DST, diff_dst.arg},
                             {DNNL_ARG_SCRATCHPAD, data_scratch}});
  diff_src->to_user(ctx.stream);
  ctx.stream.wait();  // the shared scratchpad may be regrown for the next primitive
}

void OnednnConv::Backward::backward_weights(DnnlContext& ctx, const Tensor& x, Tensor& dw) {
  src.user.set_data_handle(handle(x));
  diff_weights.user.set_data_handle(dw.data());
  ctx.bind_scratchpad(weights_scratch);
  src.to_kernel(ctx.stream);
  weights_prim.execute(ctx.stream, {{DNNL_ARG_SRC, src.arg},
                                    {DNNL_ARG_DIFF_DST, diff_dst.arg},
                                    {DNNL_ARG_DIFF_WEIGHTS, diff_weights.arg},
                                    {DNNL_ARG_SCRATCHPAD, weights_scratch}});
  diff_weights.to_user(ctx.stream);
  ctx.stream.wait();
}

void OnednnConv::backward_data_as_forward(const Conv2dGeometry& g, const Tensor& w,
                                          const Tensor& dy, Tensor& dx, Layout dx_layout) {
  // The output map's trimmed rows (trim > 0) come back as padding after dy (-trim).
  const Conv2dGeometry transposed{g.n,      g.out_h(), g.out_w(), g.c_out, g.c_in,
                                  g.kernel, 1,         g.pad,     -g.trim};
  flipped_weights_.ensure({g.c_in, g.c_out, g.kernel, g.kernel});
  transpose_and_flip(g, w.data(), flipped_weights_.data());
  run_forward(transposed, dy, flipped_weights_, dx, dx_layout,
              "backward-data (run as this forward convolution)");
}

void OnednnConv::backward(const Conv2dGeometry& g, const Tensor& x, const Tensor& w,
                          const Tensor& dy, Tensor* dx, Tensor& dw) {
  check_conv_operands(g, x, w, &dy);
  if (dx) dx->ensure({g.n, g.h, g.w, g.c_in}, dx->dtype());
  dw.ensure({g.c_out, g.c_in, g.kernel, g.kernel});
  // Each gradient by the fastest route this geometry has: dx as a forward convolution, dw as
  // a GEMM where they apply; whatever is left by oneDNN's backward primitives.
  Tensor* dx_left = dx;
  if (dx && bf16_ && data_grad_as_forward(g)) {
    backward_data_as_forward(g, w, dy, *dx, x.layout());
    dx_left = nullptr;
  }
  if (!dx_left && bf16_ && WeightGradGemm::applies(g, x, dy))
    return with_dnnl("conv2d_backward (weights as GEMM)",
                     [&] { weight_grad_gemm_.compute(g, x, dy, dw); });
  run_backward(g, x, dy, w, dx_left, dw);
}

void OnednnConv::run_backward(const Conv2dGeometry& g, const Tensor& x, const Tensor& dy,
                              const Tensor& w, Tensor* dx, Tensor& dw) {
  const ConvLayouts layouts(g, x, dy.layout(), dy.dtype(), dx ? dx->dtype() : x.dtype());
  with_dnnl("conv2d_backward", [&] {
    Backward& e = bwd_.get(conv_key(g, layouts, dx != nullptr), [&] {
      backward_primitives_ += dx ? 2 : 1;
      return build_with_fallback(g, layouts, winograd_, bf16_, "backward", [&](ConvAlgo algo) {
        return Backward::build(ctx_, g, layouts, algo, dx != nullptr);
      });
    });
    bf16_passes_in_f32_ += e.in_f32;
    e.diff_dst.user.set_data_handle(handle(dy));
    e.diff_dst.to_kernel(ctx_.stream);
    if (dx) e.backward_data(ctx_, w, *dx);
    e.backward_weights(ctx_, x, dw);
  });
  if (dx) dx->set_layout(x.layout());
}

}  // namespace dp::cpu
