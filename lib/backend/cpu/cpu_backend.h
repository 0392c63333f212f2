// The CPU implementation of dp::Backend: convolution, batch norm, max pooling and linear run
// on oneDNN (onednn_*.cpp), and on own AVX-512 kernels where they were measured faster
// (thin_winograd, batchnorm_add_relu, window_maxpool, batchnorm_gelu, patch_conv_gelu,
// gelu_bf16, weight_grad_gemm; README "Architecture"); the memory-bound ops (elementwise, global average pooling, loss,
// SGD, norms) are OpenMP loops, where a oneDNN primitive would only add call overhead.
// cpu_backend.cpp holds the core (construction, memory, the routing of the compute-bound ops);
// each group of memory-bound ops has its own cpu_backend_<role>.cpp.
#pragma once

#include <memory>

#include "backend/backend.h"
#include "backend/cpu/activation_layout.h"
#include "backend/cpu/batchnorm_add_relu.h"
#include "backend/cpu/batchnorm_gelu.h"
#include "backend/cpu/conv_as_gemm.h"
#include "backend/cpu/onednn_ops.h"
#include "backend/cpu/patch_conv_gelu.h"
#include "backend/cpu/primitive_cache.h"
#include "backend/cpu/thin_winograd.h"

namespace dp::cpu {

// How convolutions are computed; by default from the environment.
struct CpuConvOptions {
  // Winograd for 3x3 stride-1 convolutions of 16 channels (our own kernel, AVX-512) and of 32+
  // (oneDNN's; see onednn_conv.cpp) (faster, rounding differs):
  // DPTRAIN_CPU_CONV=winograd|direct (unset: winograd).
  bool winograd = conv_winograd_from_environment();
  // Our own Winograd kernel for the 16-channel ones (thin_winograd.h), under `winograd`:
  // DPTRAIN_CPU_CONV_THIN=on|off (unset: on; off leaves them to oneDNN's direct kernel).
  bool thin_winograd = thin_winograd_from_environment();
  // Small output maps as one GEMM over the batch (conv_as_gemm.h):
  // DPTRAIN_CPU_CONV_GEMM=on|off (unset: on).
  bool gemm_small_maps = conv_gemm_from_environment();
  // Output rows and columns a floor-mode pool never reads left out (Backend::
  // supports_conv_trim) where the convolutions run direct (`bf16`, or `winograd` off):
  // DPTRAIN_CPU_CONV_TRIM=on|off (unset: on).
  bool trim = conv_trim_from_environment();
  // nChw16c activations in stages of 32+ channels on 3x3+ maps (activation_layout.h).
  bool blocked_activations = true;
  // Every convolution on oneDNN's bf16 kernels where this CPU has them (onednn_conv.cpp),
  // instead of the Winograd, own and GEMM kernels above: --precision bf16.
  bool bf16 = false;
  // With `bf16`: activations and their gradients stored in bf16 as well (activation_dtype()).
  // Convolution, its bias, GELU, max pooling, batch norm (sync BN's pieces too) and linear take
  // them; the other activation ops (ReLU, residual adds, average pooling, shortcuts, scale)
  // are f32 only and refuse bf16 tensors.
  bool bf16_activations = false;
};

class CpuBackend final : public Backend {
 public:
  // threads > 0 sets the OpenMP thread count (used by oneDNN too); 0 keeps the default.
  explicit CpuBackend(int threads, CpuConvOptions conv = {});

  Device device() const override { return Device::cpu; }
  std::string name() const override;
  DType activation_dtype() const override {
    return bf16_activations_ ? DType::bf16 : DType::f32;
  }

  Tensor allocate(const Shape& shape, DType dtype) override;
  void copy_to_host(const Tensor& src, void* dst) override;
  void copy_from_host(const void* src, Tensor& dst) override;
  void fill(Tensor& t, float value) override;
  void synchronize() override;

  void augment_batch(const AugmentSpec& spec, const Tensor& images, const Tensor& crop_yx,
                     const Tensor& flip, Tensor& out) override;

  void conv2d_forward(const Conv2dGeometry& g, const Tensor& x, const Tensor& w,
                      Tensor& y) override;
  // Where convolutions run direct (bf16, or DPTRAIN_CPU_CONV=direct): oneDNN's direct kernels
  // pad each side on its own; its Winograd and the own and GEMM kernels take trim 0 only.
  bool supports_conv_trim() const override { return conv_trim_; }
  void conv2d_backward(const Conv2dGeometry& g, const Tensor& x, const Tensor& w, const Tensor& dy,
                       Tensor* dx, Tensor& dw) override;

  void batchnorm_forward_train(const BatchNormGeometry& g, const Tensor& x, const Tensor& gamma,
                               const Tensor& beta, Tensor& running_mean, Tensor& running_var,
                               Tensor& y, Tensor& saved_mean, Tensor& saved_var,
                               Tensor& workspace) override;
  void batchnorm_forward_inference(const BatchNormGeometry& g, const Tensor& x, const Tensor& gamma,
                                   const Tensor& beta, const Tensor& running_mean,
                                   const Tensor& running_var, Tensor& y) override;
  void batchnorm_backward(const BatchNormGeometry& g, const Tensor& x, const Tensor& dy,
                          const Tensor& gamma, const Tensor& beta, const Tensor& saved_mean,
                          const Tensor& saved_var, const Tensor& workspace, Tensor& dx,
                          Tensor& dgamma, Tensor& dbeta) override;
  // Fused on AVX-512 CPUs for channels in multiples of 16 (batchnorm_add_relu.h).
  bool fuses_batchnorm_add_relu(const BatchNormGeometry& g) const override;
  void batchnorm_add_relu_forward_train(const BatchNormGeometry& g, const Tensor& x,
                                        const Tensor& gamma, const Tensor& beta,
                                        Tensor& running_mean, Tensor& running_var,
                                        const Tensor& residual, Tensor& y, Tensor& saved_mean,
                                        Tensor& saved_var, Tensor& workspace) override;

  // Fused for bf16 activations on AVX512-BF16 CPUs (batchnorm_gelu.h).
  bool fuses_batchnorm_gelu(const BatchNormGeometry& g, DType dtype) const override;
  void batchnorm_gelu_forward_train(const BatchNormGeometry& g, const Tensor& x,
                                    const Tensor& gamma, const Tensor& beta, Tensor& running_mean,
                                    Tensor& running_var, Tensor& y, Tensor& saved_mean,
                                    Tensor& saved_var) override;
  void batchnorm_gelu_backward(const BatchNormGeometry& g, const Tensor& x, const Tensor& dy,
                               const Tensor& gamma, const Tensor& beta, const Tensor& saved_mean,
                               const Tensor& saved_var, Tensor& dx, Tensor& dgamma,
                               Tensor& dbeta) override;

  // Fused for bf16 activations on AVX512-BF16 CPUs, for small patches (patch_conv_gelu.h).
  bool fuses_conv_bias_gelu(const Conv2dGeometry& g, DType x_dtype) const override;
  void conv_bias_gelu_forward(const Conv2dGeometry& g, const Tensor& x, const Tensor& w,
                              const Tensor& b, Tensor* z, Tensor& y) override;

  // OpenMP loops over either layout (cpu_backend_sync_batchnorm.cpp).
  void batchnorm_local_moments(const BatchNormGeometry& g, const Tensor& x, Tensor& mean,
                               Tensor& m2) override;
  void batchnorm_normalize(const BatchNormGeometry& g, const Tensor& x, const Tensor& gamma,
                           const Tensor& beta, const Tensor& mean, const Tensor& invstd,
                           Tensor& y) override;
  void batchnorm_backward_sums(const BatchNormGeometry& g, const Tensor& x, const Tensor& dy,
                               const Tensor& gamma, const Tensor& beta, const Tensor& mean,
                               const Tensor& invstd, Tensor& sum_dy,
                               Tensor& sum_dy_xhat) override;
  void batchnorm_backward_input(const BatchNormGeometry& g, const Tensor& x, const Tensor& dy,
                                const Tensor& gamma, const Tensor& beta, const Tensor& mean,
                                const Tensor& invstd, const Tensor& mean_dy,
                                const Tensor& mean_dy_xhat, Tensor& dx) override;

  void relu_forward(const Tensor& x, Tensor& y) override;
  void relu_backward(const Tensor& y, const Tensor& dy, Tensor& dx) override;
  void add_relu_forward(const Tensor& a, const Tensor& b, Tensor& y) override;
  void add_relu_backward(const Tensor& y, const Tensor& dy, Tensor& dx) override;
  void accumulate(const Tensor& x, Tensor& y) override;
  void accumulate_relu_backward(const Tensor& x, const Tensor& relu_output, Tensor& y) override;
  // GELU on our own kernel for bf16 on AVX512-BF16 CPUs (gelu_bf16.h), else on oneDNN
  // (onednn_gelu.cpp); scale and the channel bias are OpenMP loops over either
  // layout (cpu_backend_elementwise.cpp, cpu_backend_bias.cpp).
  void gelu_forward(const Tensor& x, Tensor& y) override;
  void gelu_backward(const Tensor& x, const Tensor& dy, Tensor& dx) override;
  void scale(const Tensor& x, float alpha, Tensor& y) override;
  void channel_bias_forward(const Tensor& b, Tensor& y) override;
  void channel_bias_backward(const Tensor& dy, Tensor& db) override;

  // Reads either layout, writes the layout a conv of the output's shape would
  // (cpu_backend_shortcut.cpp).
  void subsample_pad_forward(const SubsamplePadGeometry& g, const Tensor& x, Tensor& y) override;
  void subsample_pad_backward(const SubsamplePadGeometry& g, const Tensor& dy,
                              Tensor& dx) override;

  void maxpool_forward(const PoolGeometry& g, const Tensor& x, Tensor& y,
                       Tensor& workspace) override;
  void maxpool_backward(const PoolGeometry& g, const Tensor& dy, const Tensor& workspace,
                        Tensor& dx) override;
  void global_avgpool_forward(const Tensor& x, Tensor& y) override;
  void global_avgpool_backward(const Tensor& dy, Tensor& dx) override;

  void linear_forward(const Tensor& x, const Tensor& w, const Tensor& b, Tensor& y) override;
  void linear_backward(const Tensor& x, const Tensor& w, const Tensor& dy, Tensor& dx, Tensor& dw,
                       Tensor& db) override;

  float softmax_cross_entropy(const Tensor& logits, const Tensor& labels, float label_smoothing,
                              Tensor& dlogits, int64_t& correct) override;

  void sgd_step(const SgdHyper& h, Tensor& params, const Tensor& grads, Tensor& momentum_buffer,
                const Tensor& decay_mask) override;
  double sum_of_squares(const Tensor& t) override;

  // Whether this geometry's convolution runs as one GEMM over the batch (conv_as_gemm.h).
  bool conv_runs_as_gemm(const Conv2dGeometry& g) const;
  // Whether this geometry's convolution runs on the 16-channel Winograd kernel (thin_winograd.h).
  bool conv_runs_thin_winograd(const Conv2dGeometry& g) const;
  // The layout this geometry's convolution writes its output in.
  Layout conv_output_layout(const Conv2dGeometry& g) const;
  // Convolution calls run so far in f32 although bf16 was asked (OnednnConv).
  size_t conv_bf16_passes_in_f32() const { return conv_.bf16_passes_in_f32(); }

  // How many primitive cache entries exist (tests check that repeated shapes reuse them).
  size_t cached_primitive_entries() const;

 private:
  // How this geometry's convolution is lowered to GEMM (none: oneDNN's convolution runs it).
  ConvLowering gemm_lowering(const Conv2dGeometry& g) const;
  // ", Winograd 3x3 conv" and which kernels run it, for name(); empty without Winograd.
  const char* winograd_description() const;
  // Whether 3x3 convolutions run on oneDNN's direct kernels (bf16, or Winograd off): the route
  // that takes a trim (supports_conv_trim).
  bool convolutions_run_direct() const { return conv_.bf16() || !conv_.winograd(); }

  // Operands that arrive in another layout than the op computes in are reordered into these
  // (at the edges of a blocked stage, or from a caller's NHWC tensor; never inside a stage).
  struct LayoutScratch {
    Tensor input, grad, result;
  };

  // Declared first: the ops hold a reference to it.
  std::unique_ptr<DnnlContext> ctx_;
  LayoutConverter layouts_;
  LayoutScratch scratch_;
  bool blocked_;
  OnednnConv conv_;
  ConvAsGemm gemm_conv_;
  ThinWinograd thin_winograd_;
  bool thin_winograd_enabled_;
  bool conv_trim_;
  bool gemm_small_maps_;
  bool bf16_activations_;
  OnednnBatchNorm batchnorm_;
  BatchNormAddReluScratch batchnorm_add_relu_;
  BatchNormGeluScratch batchnorm_gelu_;
  OnednnMaxPool maxpool_;
  OnednnLinear linear_;
  OnednnGelu gelu_;
  // Linear without bias: the zero bias its forward runs with.
  Tensor zero_bias_;
};

}  // namespace dp::cpu
