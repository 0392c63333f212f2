// Which memory layout the CPU backend keeps its activations in, and the conversions between
// layouts (dp::Layout in core/tensor.h).
//
// Why blocked: oneDNN implements Winograd only on nChw16c activations, and its direct kernels
// on nChw16c beat the NHWC ones in backward; with NHWC in and out, the reorders around Winograd
// eat its gain (see tests/bench/results/code-measurements-backend.md). So a conv whose output
// has 32+ channels (a multiple of 16) on a map of at least 3x3 writes nChw16c, and batch norm,
// pooling and the elementwise loops keep their input's layout, so a whole ResNet stage runs
// without a reorder. Smaller maps stay NHWC: their 3x3 convolutions are lowered to GEMM
// (conv_as_gemm.h), which reads NHWC.
//
// Networks of bottleneck blocks (ResNet-50) run better all NHWC in f32: their 1x1 convolutions
// have faster NHWC kernels (brgconv_1x1) than blocked ones, and at 32x32 input their stages end
// on GEMM-lowered maps, so each stage would reorder out of blocked again (whole-step timings:
// tests/bench/results/code-measurements-backend.md). With bf16 convolutions every network takes
// the layout oneDNN's bf16 kernels use on the CPU (NHWC with AMX, blocked without). The
// application chooses per network and CPU (train/cpu_backend_setup.h).
#pragma once

#include <cstdint>
#include <oneapi/dnnl/dnnl.hpp>

#include "backend/cpu/primitive_cache.h"
#include "core/tensor.h"

namespace dp::cpu {

// The smallest map oneDNN's Winograd runs on here (onednn_conv.cpp); blocked activations start
// at the same size, so a Winograd layer never has its operands reordered out of NHWC.
inline constexpr int64_t kWinogradMinMap = 3;

// The layout a conv output (or an activation gradient made from scratch) of c channels on an
// h x w map gets: nchw16c where blocked layouts are enabled and the shape suits them.
Layout preferred_layout(bool blocked_enabled, int64_t c, int64_t h, int64_t w);

// A 16-channel NHWC tensor is byte for byte an nChw16c one, so it may be described to oneDNN
// either way; its tag stays nhwc.
inline bool nhwc_is_blocked(int64_t c) { return c == kChannelBlock; }

// oneDNN's element type for an activation's: f32 or bf16 (others are no activations).
dnnl::memory::data_type dnnl_type(DType dtype);

// oneDNN's description of an {n, h, w, c} activation in `layout` (logical dims {n, c, h, w}).
dnnl::memory::desc activation_desc(int64_t n, int64_t h, int64_t w, int64_t c, Layout layout,
                                   DType dtype = DType::f32);
dnnl::memory::desc activation_desc(const Tensor& t);

// Reorders between layouts, one cached oneDNN reorder per shape and direction.
class LayoutConverter {
 public:
  explicit LayoutConverter(DnnlContext& ctx);  // out of line: Reorder is complete only there
  ~LayoutConverter();
  // `t` itself when it is already in `layout`; else its contents reordered into `scratch`.
  const Tensor& in_layout(const Tensor& t, Layout layout, Tensor& scratch);
  // dst (reshaped to src's shape) receives src's contents in `layout`.
  void convert(const Tensor& src, Tensor& dst, Layout layout);
  // src's contents in NHWC order into plain host memory.
  void to_nhwc(const Tensor& src, void* dst);
  // dst (reshaped to src's shape, in src's layout) receives src's values in `dtype` (bf16:
  // rounded to nearest even).
  void convert_type(const Tensor& src, Tensor& dst, DType dtype);
  // `t` itself when it is already of `dtype`; else its values converted into `scratch`.
  const Tensor& in_dtype(const Tensor& t, DType dtype, Tensor& scratch);
  size_t cached_entries() const { return reorders_.size(); }

 private:
  struct Reorder;
  Reorder& reorder_for(const Tensor& src, Layout to, DType to_dtype);
  void run(const Tensor& src, Layout to, DType to_dtype, void* dst);
  DnnlContext& ctx_;
  PrimitiveCache<Reorder> reorders_;
};

}  // namespace dp::cpu
