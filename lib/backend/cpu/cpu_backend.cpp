// CpuBackend's core: construction, memory and copies, and the routing of the compute-bound ops
// to their kernels (the oneDNN wrappers, conv_as_gemm, thin_winograd, batchnorm_add_relu). The
// memory-bound ops are OpenMP loops in one file per role (cpu_backend_*.cpp).
#include "backend/cpu/cpu_backend.h"

#include <omp.h>

#include <algorithm>
#include <cstring>

#include "backend/cpu/batchnorm_statistics.h"
#include "backend/cpu/cpu_isa.h"
#include "backend/cpu/dnnl_check.h"
#include "backend/cpu/onednn_version.h"
#include "backend/cpu/openmp_threshold.h"
#include "backend/cpu/window_maxpool.h"
#include "backend/operand_checks.h"
#include "core/bf16.h"

namespace dp::cpu {

CpuBackend::CpuBackend(int threads, CpuConvOptions conv)
    : ctx_(with_dnnl("engine creation",
                     [&] {
                       if (threads > 0) omp_set_num_threads(threads);
                       return std::make_unique<DnnlContext>();
                     })),
      layouts_(*ctx_),
      blocked_(conv.blocked_activations),
      conv_(*ctx_, conv.winograd, conv.bf16),
      thin_winograd_enabled_(conv.winograd && conv.thin_winograd && !conv.bf16),
      conv_trim_(conv.trim && convolutions_run_direct()),  // conv_ is built by now
      gemm_small_maps_(conv.gemm_small_maps && !conv.bf16),
      bf16_activations_(conv.bf16 && conv.bf16_activations),
      batchnorm_(*ctx_),
      maxpool_(*ctx_),
      linear_(*ctx_),
      gelu_(*ctx_) {}

std::string CpuBackend::name() const {
  return fmt::format("cpu (oneDNN {}, {} OpenMP threads{}{}{}{})", onednn_version(),
                     omp_get_max_threads(),
                     bf16_activations_ ? ", bf16 activations and convolutions"
                     : conv_.bf16()    ? ", bf16 convolutions"
                                       : winograd_description(),
                     blocked_ ? ", nChw16c activations" : "",
                     gemm_small_maps_ || conv_.bf16() ? "" : ", no GEMM lowering of small-map conv",
                     // where trimming would apply but DPTRAIN_CPU_CONV_TRIM=off
                     conv_trim_ || !convolutions_run_direct() ? "" : ", untrimmed conv maps");
}

const char* CpuBackend::winograd_description() const {
  if (!conv_.winograd()) return "";
  return thin_winograd_enabled_ ? ", Winograd 3x3 conv (own kernel at 16 channels)"
                                : ", Winograd 3x3 conv";
}

size_t CpuBackend::cached_primitive_entries() const {
  return conv_.cached_entries() + batchnorm_.cached_entries() + maxpool_.cached_entries() +
         linear_.cached_entries() + gelu_.cached_entries() + layouts_.cached_entries();
}

// --- memory ------------------------------------------------------------------------------------

Tensor CpuBackend::allocate(const Shape& shape, DType dtype) { return Tensor::empty(shape, dtype); }

void CpuBackend::copy_to_host(const Tensor& src, void* dst) {
  if (src.layout() == Layout::nhwc)
    std::memcpy(dst, src.data<void>(), src.bytes());
  else
    layouts_.to_nhwc(src, dst);
}

void CpuBackend::copy_from_host(const void* src, Tensor& dst) {
  std::memcpy(dst.data<void>(), src, dst.bytes());
  dst.set_layout(Layout::nhwc);
}

void CpuBackend::fill(Tensor& t, float value) {
  const int64_t n = t.numel();
  switch (t.dtype()) {
    case DType::f32: {
      float* p = t.data();
#pragma omp parallel for simd if (n > kParallelMin)
      for (int64_t i = 0; i < n; ++i) p[i] = value;
      break;
    }
    case DType::i32: {
      int32_t* p = t.data<int32_t>();
      for (int64_t i = 0; i < n; ++i) p[i] = static_cast<int32_t>(value);
      break;
    }
    case DType::u8:
      std::memset(t.data<void>(), static_cast<int>(value), n);
      break;
    case DType::bf16: {
      uint16_t* p = t.data<uint16_t>();
      std::fill(p, p + n, bf16_bits(value));
      break;
    }
  }
}

void CpuBackend::synchronize() { ctx_->stream.wait(); }

// --- compute-bound ops: routed to their kernels -------------------------------------------------

bool CpuBackend::conv_runs_thin_winograd(const Conv2dGeometry& g) const {
  return thin_winograd_enabled_ && ThinWinograd::applies(g);
}

ConvLowering CpuBackend::gemm_lowering(const Conv2dGeometry& g) const {
  return gemm_small_maps_ ? conv_lowering_for(g) : ConvLowering::none;
}

bool CpuBackend::conv_runs_as_gemm(const Conv2dGeometry& g) const {
  return gemm_lowering(g) != ConvLowering::none;
}

Layout CpuBackend::conv_output_layout(const Conv2dGeometry& g) const {
  if (gemm_lowering(g) != ConvLowering::none) return Layout::nhwc;  // the GEMM writes NHWC
  return preferred_layout(blocked_, g.c_out, g.out_h(), g.out_w());
}

void CpuBackend::conv2d_forward(const Conv2dGeometry& g, const Tensor& x, const Tensor& w,
                                Tensor& y) {
  const ConvLowering how = gemm_lowering(g);
  if (how == ConvLowering::none && !conv_runs_thin_winograd(g))
    return conv_.forward(g, x, w, y, conv_output_layout(g));
  check_conv_operands(g, x, w, nullptr);
  check_f32("conv2d_forward (own and GEMM kernels)", {&x, &y});
  if (conv_runs_thin_winograd(g))
    return thin_winograd_.forward(g, x, w, y);  // 16 channels: NHWC is nChw16c's bytes
  const Tensor& x_nhwc = layouts_.in_layout(x, Layout::nhwc, scratch_.input);
  y.ensure({g.n, g.out_h(), g.out_w(), g.c_out});
  with_dnnl("conv2d_forward (GEMM)", [&] { gemm_conv_.forward(how, g, x_nhwc, w, y); });
}

void CpuBackend::conv2d_backward(const Conv2dGeometry& g, const Tensor& x, const Tensor& w,
                                 const Tensor& dy, Tensor* dx, Tensor& dw) {
  const ConvLowering how = gemm_lowering(g);
  const Tensor& dy_in = layouts_.in_layout(dy, conv_output_layout(g), scratch_.grad);
  if (how == ConvLowering::none && !conv_runs_thin_winograd(g))
    return conv_.backward(g, x, w, dy_in, dx, dw);
  check_conv_operands(g, x, w, &dy);
  check_f32("conv2d_backward (own and GEMM kernels)", {&x, &dy});
  if (conv_runs_thin_winograd(g)) {
    if (dx) thin_winograd_.backward_data(g, w, dy_in, *dx, x.layout());
    return thin_winograd_.backward_weights(g, x, dy_in, dw);
  }
  const Tensor& x_nhwc = layouts_.in_layout(x, Layout::nhwc, scratch_.input);
  // The GEMM writes dx in NHWC; a blocked x gets its gradient reordered into its own layout.
  const bool reorder_dx = dx && x.layout() != Layout::nhwc;
  Tensor* dx_nhwc = reorder_dx ? &scratch_.result : dx;
  if (dx_nhwc) dx_nhwc->ensure({g.n, g.h, g.w, g.c_in});
  dw.ensure({g.c_out, g.c_in, g.kernel, g.kernel});
  with_dnnl("conv2d_backward (GEMM)",
            [&] { gemm_conv_.backward(how, g, x_nhwc, w, dy_in, dx_nhwc, dw); });
  if (reorder_dx) layouts_.convert(scratch_.result, *dx, x.layout());
}

void CpuBackend::batchnorm_forward_train(const BatchNormGeometry& g, const Tensor& x,
                                         const Tensor& gamma, const Tensor& beta,
                                         Tensor& running_mean, Tensor& running_var, Tensor& y,
                                         Tensor& saved_mean, Tensor& saved_var, Tensor& workspace) {
  batchnorm_.forward_train(g, x, gamma, beta, running_mean, running_var, y, saved_mean, saved_var,
                           workspace);
}

bool CpuBackend::fuses_batchnorm_add_relu(const BatchNormGeometry& g) const {
  return batchnorm_add_relu_applies(g);
}

void CpuBackend::batchnorm_add_relu_forward_train(const BatchNormGeometry& g, const Tensor& x,
                                                  const Tensor& gamma, const Tensor& beta,
                                                  Tensor& running_mean, Tensor& running_var,
                                                  const Tensor& residual, Tensor& y,
                                                  Tensor& saved_mean, Tensor& saved_var,
                                                  Tensor& /*workspace: unused without fuse_relu*/) {
  DP_CHECK(batchnorm_add_relu_applies(g),
           "batch norm + add + ReLU: no fused kernel for {} channels{}", g.c,
           g.fuse_relu ? " with fuse_relu" : "");
  check_batchnorm_operands(g, x, {&gamma, &beta, &running_mean, &running_var});
  check_f32("batch norm + add + ReLU", {&x, &residual});
  DP_CHECK(residual.shape() == x.shape(), "batch norm + add + ReLU: residual {} is not input {}",
           to_string(residual.shape()), to_string(x.shape()));
  const Tensor& r = layouts_.in_layout(residual, x.layout(), scratch_.input);
  fused_batchnorm_add_relu(g, x, gamma, beta, r, y, saved_mean, saved_var, batchnorm_add_relu_);
  update_running_statistics(g, saved_mean, saved_var, running_mean, running_var);
}

bool CpuBackend::fuses_batchnorm_gelu(const BatchNormGeometry& g, DType dtype) const {
  return batchnorm_gelu_applies(g, dtype);
}

void CpuBackend::batchnorm_gelu_forward_train(const BatchNormGeometry& g, const Tensor& x,
                                              const Tensor& gamma, const Tensor& beta,
                                              Tensor& running_mean, Tensor& running_var, Tensor& y,
                                              Tensor& saved_mean, Tensor& saved_var) {
  check_batchnorm_operands(g, x, {&gamma, &beta, &running_mean, &running_var});
  batchnorm_gelu_forward(g, x, gamma, beta, y, saved_mean, saved_var, batchnorm_gelu_);
  update_running_statistics(g, saved_mean, saved_var, running_mean, running_var);
}

void CpuBackend::batchnorm_gelu_backward(const BatchNormGeometry& g, const Tensor& x,
                                         const Tensor& dy, const Tensor& gamma, const Tensor& beta,
                                         const Tensor& saved_mean, const Tensor& saved_var,
                                         Tensor& dx, Tensor& dgamma, Tensor& dbeta) {
  check_batchnorm_operands(g, x, {&gamma, &beta, &saved_mean, &saved_var});
  DP_CHECK(dy.shape() == x.shape(), "batch norm + GELU backward: dy {} is not input {}",
           to_string(dy.shape()), to_string(x.shape()));
  const Tensor& dy_in = layouts_.in_layout(dy, x.layout(), scratch_.grad);
  cpu::batchnorm_gelu_backward(g, x, dy_in, gamma, beta, saved_mean, saved_var, dx, dgamma,
                               dbeta, batchnorm_gelu_);
}

bool CpuBackend::fuses_conv_bias_gelu(const Conv2dGeometry& g, DType x_dtype) const {
  return bf16_activations_ && patch_conv_gelu_applies(g, x_dtype);
}

void CpuBackend::conv_bias_gelu_forward(const Conv2dGeometry& g, const Tensor& x, const Tensor& w,
                                        const Tensor& b, Tensor* z, Tensor& y) {
  check_conv_operands(g, x, w, nullptr);
  DP_CHECK(b.numel() == g.c_out && w.dtype() == DType::f32 && b.dtype() == DType::f32,
           "conv + bias + GELU: f32 weight and bias {} for {} output channels expected",
           to_string(b.shape()), g.c_out);
  DP_CHECK(fuses_conv_bias_gelu(g, x.dtype()),
           "conv + bias + GELU: no fused kernel here (check fuses_conv_bias_gelu first)");
  patch_conv_bias_gelu(g, layouts_.in_layout(x, Layout::nhwc, scratch_.input), w, b, z, y);
}

void CpuBackend::batchnorm_forward_inference(const BatchNormGeometry& g, const Tensor& x,
                                             const Tensor& gamma, const Tensor& beta,
                                             const Tensor& running_mean, const Tensor& running_var,
                                             Tensor& y) {
  batchnorm_.forward_inference(g, x, gamma, beta, running_mean, running_var, y);
}

void CpuBackend::batchnorm_backward(const BatchNormGeometry& g, const Tensor& x, const Tensor& dy,
                                    const Tensor& gamma, const Tensor& beta,
                                    const Tensor& saved_mean, const Tensor& saved_var,
                                    const Tensor& workspace, Tensor& dx, Tensor& dgamma,
                                    Tensor& dbeta) {
  const Tensor& dy_in = layouts_.in_layout(dy, x.layout(), scratch_.grad);
  batchnorm_.backward(g, x, dy_in, gamma, beta, saved_mean, saved_var, workspace, dx, dgamma,
                      dbeta);
}

void CpuBackend::maxpool_forward(const PoolGeometry& g, const Tensor& x, Tensor& y,
                                 Tensor& workspace) {
  check_pool_input(g, x, "maxpool_forward");
  if (window_maxpool_handles(g, x.dtype())) return window_maxpool_forward(g, x, y, workspace);
  maxpool_.forward(g, x, y, workspace);
}

void CpuBackend::maxpool_backward(const PoolGeometry& g, const Tensor& dy, const Tensor& workspace,
                                  Tensor& dx) {
  check_pool_output_gradient(g, dy, "maxpool_backward");
  if (window_maxpool_handles(g, dy.dtype()))
    return window_maxpool_backward(g, layouts_.in_layout(dy, workspace.layout(), scratch_.grad),
                                   workspace, dx);
  maxpool_.backward(g, dy, workspace, dx);
}

// Without a bias, oneDNN's inner product runs with a zero one: adding 0.f changes no value.
// A bf16 input (a network's last activation) is widened to f32 exactly: the layer computes in
// f32 on f32 weights, and its logits are f32.
void CpuBackend::linear_forward(const Tensor& x_any, const Tensor& w, const Tensor& b, Tensor& y) {
  const Tensor& x = layouts_.in_dtype(x_any, DType::f32, scratch_.input);
  if (b.defined()) return linear_.forward(x, w, b, y);
  DP_CHECK(w.rank() == 2, "linear expects w {{out,in}}, got {}", to_string(w.shape()));
  if (!zero_bias_.defined() || zero_bias_.numel() != w.dim(0)) {  // nothing else writes it
    zero_bias_.ensure({w.dim(0)});
    std::fill(zero_bias_.data(), zero_bias_.data() + zero_bias_.numel(), 0.f);
  }
  linear_.forward(x, w, zero_bias_, y);
}

// dx in x's type: a bf16 input gets its f32 gradient rounded once.
void CpuBackend::linear_backward(const Tensor& x_any, const Tensor& w, const Tensor& dy, Tensor& dx,
                                 Tensor& dw, Tensor& db) {
  if (x_any.dtype() == DType::f32) return linear_.backward(x_any, w, dy, dx, dw, db);
  const Tensor& x = layouts_.in_dtype(x_any, DType::f32, scratch_.input);
  linear_.backward(x, w, dy, scratch_.result, dw, db);
  layouts_.convert_type(scratch_.result, dx, x_any.dtype());
}

}  // namespace dp::cpu

namespace dp {

std::unique_ptr<Backend> make_cpu_backend(int threads, bool blocked_activations, CpuBf16 bf16) {
  cpu::CpuConvOptions options;
  options.blocked_activations = blocked_activations;
  if (bf16 != CpuBf16::off && !cpu_has_native_bf16())
    throw UsageError(
        "option --precision bf16: this CPU has neither AVX512-BF16 nor AMX (as "
        "oneDNN detects it, under any ONEDNN_MAX_CPU_ISA); use --precision fp32");
  options.bf16 = bf16 != CpuBf16::off;
  options.bf16_activations = bf16 == CpuBf16::activations;
  return std::make_unique<cpu::CpuBackend>(threads, options);
}

bool cpu_has_native_bf16() {
  return cpu::effective_isa_includes(dnnl::cpu_isa::avx512_core_bf16);
}

Layout cpu_bf16_convolution_layout() {
  return cpu::effective_isa_includes(dnnl::cpu_isa::avx512_core_amx) ? Layout::nhwc
                                                                      : Layout::nchw16c;
}

}  // namespace dp
