// CpuBackend: memory, the OpenMP loops for memory-bound ops, and delegation of the
// compute-bound ops to their oneDNN wrappers.
#include "backend/cpu/cpu_backend.h"

#include <omp.h>

#include <bit>
#include <cmath>
#include <cstring>

#include "backend/cpu/dnnl_check.h"
#include "backend/cpu/openmp_threshold.h"
#include "backend/operand_checks.h"

namespace dp::cpu {

CpuBackend::CpuBackend(int threads, CpuConvOptions conv)
    : ctx_(with_dnnl("engine creation",
                     [&] {
                       if (threads > 0) omp_set_num_threads(threads);
                       return std::make_unique<DnnlContext>();
                     })),
      layouts_(*ctx_),
      blocked_(conv.blocked_activations),
      conv_(*ctx_, conv.winograd),
      thin_winograd_enabled_(conv.winograd && conv.thin_winograd),
      gemm_small_maps_(conv.gemm_small_maps),
      batchnorm_(*ctx_),
      maxpool_(*ctx_),
      linear_(*ctx_) {}

std::string CpuBackend::name() const {
  const dnnl_version_t* v = dnnl_version();
  return fmt::format("cpu (oneDNN {}.{}.{}, {} OpenMP threads{}{}{})", v->major, v->minor, v->patch,
                     omp_get_max_threads(), winograd_description(),
                     blocked_ ? ", nChw16c activations" : "",
                     gemm_small_maps_ ? "" : ", no GEMM lowering of small-map conv");
}

const char* CpuBackend::winograd_description() const {
  if (!conv_.winograd()) return "";
  return thin_winograd_enabled_ ? ", Winograd 3x3 conv (own kernel at 16 channels)"
                                : ", Winograd 3x3 conv";
}

size_t CpuBackend::cached_primitive_entries() const {
  return conv_.cached_entries() + batchnorm_.cached_entries() + maxpool_.cached_entries() +
         linear_.cached_entries() + layouts_.cached_entries();
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
    case DType::bf16:
      throw Error(ExitCode::internal, "the CPU backend has no bf16 tensors");
  }
}

void CpuBackend::synchronize() { ctx_->stream.wait(); }

// --- input augmentation --------------------------------------------------------------------------

void CpuBackend::augment_batch(const AugmentSpec& spec, const Tensor& images, const Tensor& crop_yx,
                               const Tensor& flip, Tensor& out) {
  check_augment_operands(spec, images, crop_yx, flip);
  const int64_t n = images.dim(0), h = images.dim(1), w = images.dim(2), c = images.dim(3);
  out.ensure(images.shape());
  const uint8_t* in = images.data<uint8_t>();
  const int32_t* crop = crop_yx.data<int32_t>();
  const uint8_t* mirrored = flip.data<uint8_t>();
  const bool normalize = !spec.mean.empty();
  float* o = out.data();
  // Element for element the expression of data::Augmenter's table and the CUDA kernel, so all
  // three give the same bits.
#pragma omp parallel for collapse(2) if (n * h * w * c > kParallelMin)
  for (int64_t b = 0; b < n; ++b)
    for (int64_t y = 0; y < h; ++y)
      for (int64_t x = 0; x < w; ++x) {
        const int64_t src_y = y + crop[2 * b] - spec.pad;
        const int64_t cropped_x = mirrored[b] ? w - 1 - x : x;
        const int64_t src_x = cropped_x + crop[2 * b + 1] - spec.pad;
        const bool inside = src_y >= 0 && src_y < h && src_x >= 0 && src_x < w;
        const uint8_t* pixel = inside ? in + ((b * h + src_y) * w + src_x) * c : nullptr;
        float* dst = o + ((b * h + y) * w + x) * c;
        for (int64_t k = 0; k < c; ++k) {
          float f = static_cast<float>(pixel ? pixel[k] : 0) / 255.0f;  // padding: a zero pixel
          if (normalize) f = (f - spec.mean[k]) / spec.std[k];
          dst[k] = f;
        }
      }
}

// --- oneDNN ops ----------------------------------------------------------------------------------

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
  if (conv_runs_thin_winograd(g)) {
    check_conv_operands(g, x, w, nullptr);
    return thin_winograd_.forward(g, x, w, y);  // 16 channels: NHWC is nChw16c's bytes
  }
  const ConvLowering how = gemm_lowering(g);
  if (how == ConvLowering::none) return conv_.forward(g, x, w, y, conv_output_layout(g));
  check_conv_operands(g, x, w, nullptr);
  const Tensor& x_nhwc = layouts_.in_layout(x, Layout::nhwc, scratch_.input);
  y.ensure({g.n, g.out_h(), g.out_w(), g.c_out});
  with_dnnl("conv2d_forward (GEMM)", [&] { gemm_conv_.forward(how, g, x_nhwc, w, y); });
}

void CpuBackend::conv2d_backward(const Conv2dGeometry& g, const Tensor& x, const Tensor& w,
                                 const Tensor& dy, Tensor* dx, Tensor& dw) {
  const ConvLowering how = gemm_lowering(g);
  const Tensor& dy_in = layouts_.in_layout(dy, conv_output_layout(g), scratch_.grad);
  if (conv_runs_thin_winograd(g)) {
    check_conv_operands(g, x, w, &dy);
    if (dx) thin_winograd_.backward_data(g, w, dy_in, *dx, x.layout());
    return thin_winograd_.backward_weights(g, x, dy_in, dw);
  }
  if (how == ConvLowering::none) return conv_.backward(g, x, w, dy_in, dx, dw);
  check_conv_operands(g, x, w, &dy);
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
  DP_CHECK(residual.shape() == x.shape(), "batch norm + add + ReLU: residual {} is not input {}",
           to_string(residual.shape()), to_string(x.shape()));
  const Tensor& r = layouts_.in_layout(residual, x.layout(), scratch_.input);
  fused_batchnorm_add_relu(g, x, gamma, beta, r, y, saved_mean, saved_var, batchnorm_add_relu_);
  update_running_statistics(g, saved_mean, saved_var, running_mean, running_var);
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
  maxpool_.forward(g, x, y, workspace);
}

void CpuBackend::maxpool_backward(const PoolGeometry& g, const Tensor& dy, const Tensor& workspace,
                                  Tensor& dx) {
  maxpool_.backward(g, dy, workspace, dx);
}

void CpuBackend::linear_forward(const Tensor& x, const Tensor& w, const Tensor& b, Tensor& y) {
  linear_.forward(x, w, b, y);
}

void CpuBackend::linear_backward(const Tensor& x, const Tensor& w, const Tensor& dy, Tensor& dx,
                                 Tensor& dw, Tensor& db) {
  linear_.backward(x, w, dy, dx, dw, db);
}

// --- elementwise ---------------------------------------------------------------------------------

// The elementwise loops run on whatever layout their first operand has; a second operand in
// another layout is reordered to it first.

void CpuBackend::relu_forward(const Tensor& x, Tensor& y) {
  y.ensure(x.shape());
  y.set_layout(x.layout());
  const int64_t n = x.numel();
  const float* px = x.data();
  float* py = y.data();
#pragma omp parallel for simd if (n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) py[i] = px[i] > 0.f ? px[i] : 0.f;
}

void CpuBackend::relu_backward(const Tensor& y, const Tensor& dy, Tensor& dx) {
  check_same_numel(y, dy, "relu_backward");
  const Tensor& dy_in = layouts_.in_layout(dy, y.layout(), scratch_.grad);
  dx.ensure(dy.shape());
  dx.set_layout(y.layout());
  const int64_t n = y.numel();
  const float* py = y.data();
  const float* pdy = dy_in.data();
  float* pdx = dx.data();
  // Both loads are unconditional so the select compiles to a vector blend: written as
  // `py[i] > 0 ? pdy[i] : 0` the load of pdy sits behind a data-dependent branch that
  // mispredicts on half the elements (measured 8x slower on 2M elements).
#pragma omp parallel for simd if (n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) {
    const float grad = pdy[i];
    pdx[i] = py[i] > 0.f ? grad : 0.f;
  }
}

void CpuBackend::add_relu_forward(const Tensor& a, const Tensor& b, Tensor& y) {
  check_same_numel(a, b, "add_relu_forward");
  const Tensor& b_in = layouts_.in_layout(b, a.layout(), scratch_.input);
  y.ensure(a.shape());
  y.set_layout(a.layout());
  const int64_t n = a.numel();
  const float* pa = a.data();
  const float* pb = b_in.data();
  float* py = y.data();
#pragma omp parallel for simd if (n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) {
    float s = pa[i] + pb[i];
    py[i] = s > 0.f ? s : 0.f;
  }
}

void CpuBackend::add_relu_backward(const Tensor& y, const Tensor& dy, Tensor& dx) {
  relu_backward(y, dy, dx);  // the same mask reaches both branches
}

void CpuBackend::accumulate(const Tensor& x, Tensor& y) {
  check_same_numel(x, y, "accumulate");
  const Tensor& x_in = layouts_.in_layout(x, y.layout(), scratch_.input);
  const int64_t n = x.numel();
  const float* px = x_in.data();
  float* py = y.data();
#pragma omp parallel for simd if (n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) py[i] += px[i];
}

void CpuBackend::accumulate_relu_backward(const Tensor& x, const Tensor& relu_output, Tensor& y) {
  check_same_numel(x, y, "accumulate_relu_backward");
  check_same_numel(relu_output, y, "accumulate_relu_backward mask");
  const Tensor& x_in = layouts_.in_layout(x, y.layout(), scratch_.input);
  const Tensor& mask_in = layouts_.in_layout(relu_output, y.layout(), scratch_.grad);
  const int64_t n = y.numel();
  const float* px = x_in.data();
  const float* pm = mask_in.data();
  float* py = y.data();
  // The mask is applied to the bits of the sum: written as `mask ? y + x : 0`, GCC sinks the
  // add and the loads into the taken branch, cannot if-convert loads it moved there, and leaves
  // a scalar loop with a branch that mispredicts on half the elements (17% of a resnet20 step).
  // Masked elements come out +0.f, as relu_backward's.
#pragma omp parallel for simd if (n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) {
    const uint32_t keep = pm[i] > 0.f ? 0xffffffffu : 0u;
    py[i] = std::bit_cast<float>(std::bit_cast<uint32_t>(py[i] + px[i]) & keep);
  }
}

// --- global average pooling ----------------------------------------------------------------------

// Channel k of pixel p of image i sits at ((i * C/16 + k/16) * HW + p) * 16 + k%16 in nChw16c:
// the loops below run over channel blocks of `block` channels, which is all of C in NHWC.
namespace {
struct ChannelBlocks {
  int64_t block, count;  // channels per block, blocks per image
  ChannelBlocks(const Tensor& t) {
    const int64_t c = t.dim(3);
    block = t.layout() == Layout::nchw16c ? 16 : c;
    count = c / block;
  }
};
}  // namespace

void CpuBackend::global_avgpool_forward(const Tensor& x, Tensor& y) {
  DP_CHECK(x.rank() == 4, "global_avgpool_forward expects NHWC, got {}", to_string(x.shape()));
  const int64_t n = x.dim(0), hw = x.dim(1) * x.dim(2), c = x.dim(3);
  const ChannelBlocks blocks(x);
  y.ensure({n, c});
  const float* px = x.data();
  float* py = y.data();
  const float scale = 1.f / static_cast<float>(hw);
#pragma omp parallel for if (n * hw * c > kParallelMin)
  for (int64_t i = 0; i < n; ++i)
    for (int64_t b = 0; b < blocks.count; ++b) {
      float* out = py + i * c + b * blocks.block;
      const float* in = px + (i * blocks.count + b) * hw * blocks.block;
      for (int64_t k = 0; k < blocks.block; ++k) out[k] = 0.f;
      for (int64_t p = 0; p < hw; ++p) {
#pragma omp simd
        for (int64_t k = 0; k < blocks.block; ++k) out[k] += in[p * blocks.block + k];
      }
#pragma omp simd
      for (int64_t k = 0; k < blocks.block; ++k) out[k] *= scale;
    }
}

// dx is written in the layout a convolution would give its shape, which is the layout the
// forward's input had inside a network.
void CpuBackend::global_avgpool_backward(const Tensor& dy, Tensor& dx) {
  DP_CHECK(dx.rank() == 4 && dy.numel() == dx.dim(0) * dx.dim(3),
           "global_avgpool_backward: dx {} must be allocated NHWC for dy {}", to_string(dx.shape()),
           to_string(dy.shape()));
  const int64_t n = dx.dim(0), hw = dx.dim(1) * dx.dim(2), c = dx.dim(3);
  dx.set_layout(preferred_layout(blocked_, c, dx.dim(1), dx.dim(2)));
  const ChannelBlocks blocks(dx);
  const float* pdy = dy.data();
  float* pdx = dx.data();
  const float scale = 1.f / static_cast<float>(hw);
#pragma omp parallel for collapse(3) if (n * hw * c > kParallelMin)
  for (int64_t i = 0; i < n; ++i)
    for (int64_t b = 0; b < blocks.count; ++b)
      for (int64_t p = 0; p < hw; ++p) {
        float* out = pdx + ((i * blocks.count + b) * hw + p) * blocks.block;
        const float* in = pdy + i * c + b * blocks.block;
#pragma omp simd
        for (int64_t k = 0; k < blocks.block; ++k) out[k] = in[k] * scale;
      }
}

// --- loss ----------------------------------------------------------------------------------------

float CpuBackend::softmax_cross_entropy(const Tensor& logits, const Tensor& labels,
                                        float label_smoothing, Tensor& dlogits, int64_t& correct) {
  DP_CHECK(logits.rank() == 2 && labels.dtype() == DType::i32 && labels.numel() == logits.dim(0),
           "softmax_cross_entropy: logits {} labels {}", to_string(logits.shape()),
           to_string(labels.shape()));
  const int64_t n = logits.dim(0), k = logits.dim(1);
  dlogits.ensure(logits.shape());
  const float* z = logits.data();
  const int32_t* y = labels.data<int32_t>();
  float* dz = dlogits.data();
  for (int64_t i = 0; i < n; ++i)
    if (y[i] < 0 || y[i] >= k)
      throw DataError(fmt::format("label {} of sample {} is outside [0, {})", y[i], i, k));

  const double eps = label_smoothing;
  const float inv_n = 1.f / static_cast<float>(n);
  double total = 0;
  int64_t hits = 0;
#pragma omp parallel for reduction(+ : total, hits) if (n * k > kParallelMin)
  for (int64_t i = 0; i < n; ++i) {
    const float* row = z + i * k;
    float* grad = dz + i * k;
    int64_t argmax = 0;
    for (int64_t j = 1; j < k; ++j)
      if (row[j] > row[argmax]) argmax = j;
    const double max = row[argmax];
    double sum_exp = 0, sum_z = 0;
    for (int64_t j = 0; j < k; ++j) {
      sum_exp += std::exp(row[j] - max);
      sum_z += row[j];
    }
    const double log_sum = max + std::log(sum_exp);
    // -log p_y and mean_j(-log p_j) = log_sum - mean_j z_j
    const double nll = log_sum - row[y[i]];
    const double smooth = log_sum - sum_z / static_cast<double>(k);
    total += (1 - eps) * nll + eps * smooth;
    hits += argmax == y[i];
    for (int64_t j = 0; j < k; ++j) {
      double p = std::exp(row[j] - log_sum);
      double target = eps / static_cast<double>(k) + (j == y[i] ? 1 - eps : 0.0);
      grad[j] = static_cast<float>(p - target) * inv_n;
    }
  }
  correct = hits;
  return static_cast<float>(total / static_cast<double>(n));
}

// --- optimizer -----------------------------------------------------------------------------------

void CpuBackend::sgd_step(const SgdHyper& h, Tensor& params, const Tensor& grads,
                          Tensor& momentum_buffer, const Tensor& decay_mask) {
  check_same_numel(params, grads, "sgd_step grads");
  const bool use_momentum = h.momentum != 0.f;
  if (use_momentum) check_same_numel(params, momentum_buffer, "sgd_step momentum buffer");
  const bool masked = decay_mask.defined();
  if (masked) check_same_numel(params, decay_mask, "sgd_step decay mask");

  const int64_t n = params.numel();
  float* w = params.data();
  const float* g = grads.data();
  float* buf = use_momentum ? momentum_buffer.data() : nullptr;
  const float* mask = masked ? decay_mask.data() : nullptr;
  const float lr = h.lr, mom = h.momentum, damp = 1.f - h.dampening, wd = h.weight_decay;
  const bool nesterov = h.nesterov;
#pragma omp parallel for simd if (n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) {
    float d = g[i] + wd * (masked ? mask[i] : 1.f) * w[i];
    if (use_momentum) {
      float b = mom * buf[i] + damp * d;
      buf[i] = b;
      d = nesterov ? d + mom * b : b;
    }
    w[i] -= lr * d;
  }
}

double CpuBackend::sum_of_squares(const Tensor& t) {
  const int64_t n = t.numel();
  const float* p = t.data();
  double s = 0;
#pragma omp parallel for simd reduction(+ : s) if (n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) s += static_cast<double>(p[i]) * p[i];
  return s;
}

}  // namespace dp::cpu

namespace dp {

std::unique_ptr<Backend> make_cpu_backend(int threads, bool blocked_activations) {
  cpu::CpuConvOptions options;
  options.blocked_activations = blocked_activations;
  return std::make_unique<cpu::CpuBackend>(threads, options);
}

}  // namespace dp
