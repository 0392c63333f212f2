// The oneDNN-backed ops of the CPU backend: convolution, batch norm, max pooling, linear, GELU.
// Each op owns per-shape caches of its primitives (see primitive_cache.h); the entry types are
// private to the op's own .cpp. Conv weights are reordered from
// PyTorch's OIHW into whatever blocked layout the chosen kernel wants, on every call (the
// weights change every step, and the reorder is cheap next to the convolution). Activations
// are NHWC or nChw16c as each tensor's layout says (activation_layout.h).
#pragma once

#include <cstddef>

#include "backend/backend.h"
#include "backend/cpu/primitive_cache.h"
#include "backend/cpu/weight_grad_gemm.h"

namespace dp::cpu {

// Winograd for the 3x3 stride-1 convolutions it speeds up (see onednn_conv.cpp) unless
// DPTRAIN_CPU_CONV=direct, which keeps direct convolution everywhere.
bool conv_winograd_from_environment();
// Convolutions may leave out the output rows and columns a floor-mode pool never reads
// (Conv2dGeometry::trim) unless DPTRAIN_CPU_CONV_TRIM=off, which computes the whole map.
bool conv_trim_from_environment();

class OnednnConv {
 public:
  // winograd: use Winograd for the 3x3 stride-1 shapes that have a kernel (else direct).
  // bf16: direct convolution on bf16 operands accumulating in f32, results written in the
  // output tensor's type (see forward/backward), for the shapes that have an optimised bf16
  // kernel on this CPU (else as without).
  // Out of line: the entry types are complete only there.
  OnednnConv(DnnlContext& ctx, bool winograd, bool bf16);
  ~OnednnConv();
  // x in its own layout; y is written in y_layout and in y's type (f32 for a fresh tensor).
  void forward(const Conv2dGeometry& g, const Tensor& x, const Tensor& w, Tensor& y,
               Layout y_layout);
  // Backward data (when dx is given) and weights in one call: they share the reordered dy.
  // dy in the layout forward wrote y in; dx is written in x's layout and in dx's type (f32 for
  // a fresh tensor; bf16 for bf16 activations' gradients, also those of f32 images).
  void backward(const Conv2dGeometry& g, const Tensor& x, const Tensor& w, const Tensor& dy,
                Tensor* dx, Tensor& dw);
  // Primitives built so far (forward, backward-data, backward-weights each count one).
  size_t cached_entries() const {
    return fwd_.size() + backward_primitives_ + weight_grad_gemm_.cached_entries();
  }
  // oneDNN primitive runs so far that were asked in bf16 and ran in f32, oneDNN having only a
  // reference bf16 kernel for them on this CPU: each forward primitive, and each backward one
  // (data and weights together), run in f32 counts one.
  size_t bf16_passes_in_f32() const { return bf16_passes_in_f32_; }
  bool winograd() const { return winograd_; }
  bool bf16() const { return bf16_; }

 private:
  struct Forward;
  struct Backward;
  // forward's work; `pass` names it in the log's note on a bf16 fallback.
  void run_forward(const Conv2dGeometry& g, const Tensor& x, const Tensor& w, Tensor& y,
                   Layout y_layout, const char* pass);
  // bf16 backward-data of a stride-1 "same" convolution as a forward convolution (see .cpp).
  void backward_data_as_forward(const Conv2dGeometry& g, const Tensor& w, const Tensor& dy,
                                Tensor& dx, Layout dx_layout);
  // oneDNN's backward primitives: dw, and dx where given.
  void run_backward(const Conv2dGeometry& g, const Tensor& x, const Tensor& dy, const Tensor& w,
                    Tensor* dx, Tensor& dw);
  DnnlContext& ctx_;
  bool winograd_;
  bool bf16_;
  Tensor flipped_weights_;  // backward_data_as_forward's weights, rebuilt on every call
  WeightGradGemm weight_grad_gemm_;
  PrimitiveCache<Forward> fwd_;
  PrimitiveCache<Backward> bwd_;
  size_t backward_primitives_ = 0;
  size_t bf16_passes_in_f32_ = 0;
};

class OnednnBatchNorm {
 public:
  explicit OnednnBatchNorm(DnnlContext& ctx);  // out of line: entry types are complete only there
  ~OnednnBatchNorm();
  // saved_var receives the biased batch variance (what oneDNN's backward consumes).
  void forward_train(const BatchNormGeometry& g, const Tensor& x, const Tensor& gamma,
                     const Tensor& beta, Tensor& running_mean, Tensor& running_var, Tensor& y,
                     Tensor& saved_mean, Tensor& saved_var, Tensor& workspace);
  void forward_inference(const BatchNormGeometry& g, const Tensor& x, const Tensor& gamma,
                         const Tensor& beta, const Tensor& running_mean, const Tensor& running_var,
                         Tensor& y);
  void backward(const BatchNormGeometry& g, const Tensor& x, const Tensor& dy, const Tensor& gamma,
                const Tensor& beta, const Tensor& saved_mean, const Tensor& saved_var,
                const Tensor& workspace, Tensor& dx, Tensor& dgamma, Tensor& dbeta);
  size_t cached_entries() const { return train_.size() + infer_.size() + bwd_.size(); }

 private:
  struct Train;
  struct Inference;
  struct Backward;
  Backward make_backward(const BatchNormGeometry& g, const Tensor& x) const;
  DnnlContext& ctx_;
  PrimitiveCache<Train> train_;
  PrimitiveCache<Inference> infer_;
  PrimitiveCache<Backward> bwd_;
};

class OnednnMaxPool {
 public:
  explicit OnednnMaxPool(DnnlContext& ctx);  // out of line: entry types are complete only there
  ~OnednnMaxPool();
  // workspace receives oneDNN's argmax bytes (u8) that backward needs.
  void forward(const PoolGeometry& g, const Tensor& x, Tensor& y, Tensor& workspace);
  void backward(const PoolGeometry& g, const Tensor& dy, const Tensor& workspace, Tensor& dx);
  size_t cached_entries() const { return fwd_.size() + bwd_.size(); }

 private:
  struct Forward;
  struct Backward;
  DnnlContext& ctx_;
  PrimitiveCache<Forward> fwd_;
  PrimitiveCache<Backward> bwd_;
};

class OnednnLinear {
 public:
  explicit OnednnLinear(DnnlContext& ctx);  // out of line: entry types are complete only there
  ~OnednnLinear();
  void forward(const Tensor& x, const Tensor& w, const Tensor& b, Tensor& y);
  void backward(const Tensor& x, const Tensor& w, const Tensor& dy, Tensor& dx, Tensor& dw,
                Tensor& db);
  size_t cached_entries() const { return fwd_.size() + bwd_data_.size() + bwd_weights_.size(); }

 private:
  struct Forward;
  struct BackwardData;
  struct BackwardWeights;
  DnnlContext& ctx_;
  PrimitiveCache<Forward> fwd_;
  PrimitiveCache<BackwardData> bwd_data_;
  PrimitiveCache<BackwardWeights> bwd_weights_;
};

// GELU (erf form) on oneDNN's eltwise_gelu_erf, for f32 and for CPUs without AVX512-BF16
// (bf16 there runs on gelu_bf16.h): a JIT-vectorised erf, where a loop over std::erf would
// stay scalar (glibc has no vector erf). Elementwise, so every tensor is seen
// as a flat {numel} array in whatever layout it has; x, y, dy and dx share one layout.
class OnednnGelu {
 public:
  explicit OnednnGelu(DnnlContext& ctx);  // out of line: entry types are complete only there
  ~OnednnGelu();
  void forward(const Tensor& x, Tensor& y);
  void backward(const Tensor& x, const Tensor& dy, Tensor& dx);
  size_t cached_entries() const { return fwd_.size() + bwd_.size(); }

 private:
  struct Forward;
  struct Backward;
  DnnlContext& ctx_;
  PrimitiveCache<Forward> fwd_;
  PrimitiveCache<Backward> bwd_;
};

// Shared by the op files: a data handle from a const tensor (oneDNN takes void*).
inline void* handle(const Tensor& t) { return const_cast<void*>(t.data<void>()); }

}  // namespace dp::cpu
