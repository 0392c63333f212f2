// The compute primitives every layer is built from, one interface for all devices. The CPU
// implementation sits in cpu/ (oneDNN), the CUDA one in cuda/ (cuDNN + cuBLAS + own kernels).
//
// Conventions shared by every implementation:
// - activations are channels-last {N, H, W, C}; conv weights are {O, I, KH, KW} (PyTorch);
//   linear weights {out, in}; per-channel vectors {C}.
// - backward ops OVERWRITE parameter gradients (each parameter is used once per step) and
//   OVERWRITE input gradients; the caller sums where a tensor fans out (residual blocks).
// - implementations cache their primitives per shape, so repeated calls allocate nothing.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "backend/batch_uploader.h"
#include "backend/sgd_update.h"
#include "core/tensor.h"

struct CUstream_st;  // cudaStream_t without the CUDA headers

namespace dp {

struct Conv2dGeometry {
  int64_t n, h, w, c_in;    // input
  int64_t c_out, kernel, stride, pad;
  // Output rows and columns cut off the bottom and right: `pad` zeros before the input and
  // pad - trim after it (PyTorch pads symmetrically: trim 0). A floor-mode pool that never
  // reads an odd map's last row and column lets its convolution skip them (trim 1); a
  // data gradient run as a forward convolution pads more after (trim -1).
  int64_t trim = 0;
  int64_t pad_after() const { return pad - trim; }
  int64_t out_h() const { return (h + pad + pad_after() - kernel) / stride + 1; }
  int64_t out_w() const { return (w + pad + pad_after() - kernel) / stride + 1; }
};

struct PoolGeometry {
  int64_t n, h, w, c;
  int64_t kernel, stride, pad;
  int64_t out_h() const { return (h + 2 * pad - kernel) / stride + 1; }
  int64_t out_w() const { return (w + 2 * pad - kernel) / stride + 1; }
};

struct BatchNormGeometry {
  int64_t n, h, w, c;
  float eps = 1e-5f;
  float momentum = 0.1f;  // PyTorch convention: running = (1-m)*running + m*batch
  bool fuse_relu = false; // y = relu(bn(x)); backward then applies the ReLU mask itself
};

// He et al.'s option-A shortcut (subsample_pad_*): x {n, h, w, c_in} -> y {n, out_h, out_w,
// c_out}, y[b, i, j, k] = x[b, i*stride, j*stride, k] for k < c_in and 0 for c_in <= k < c_out
// (PyTorch: F.pad(x[:, :, ::stride, ::stride], (0, 0, 0, 0, 0, c_out - c_in))). The output map
// is what a 3x3 pad-1 conv of that stride gives: ceil(h / stride) x ceil(w / stride).
struct SubsamplePadGeometry {
  int64_t n, h, w, c_in, c_out, stride;
  int64_t out_h() const { return (h + stride - 1) / stride; }
  int64_t out_w() const { return (w + stride - 1) / stride; }
};

// The input augmentation a backend applies to a batch of raw images (augment_batch).
struct AugmentSpec {
  int64_t pad = 0;               // zero pixels around each image before the crop
  bool reflect = false;          // reflected pixels instead (augment::reflect_index), pad < H, W
  std::vector<float> mean, std;  // per channel, [0, 1] units; empty: no normalisation
};

// Device work recorded once and replayed with one launch (a CUDA graph).
class CapturedWork {
 public:
  virtual ~CapturedWork() = default;
  // Queues the recorded work again, on the same buffers. Returns false, queueing nothing, when
  // device memory has been released since the capture (a buffer it used may now belong to
  // someone else): the work must then be captured anew.
  virtual bool replay() = 0;
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual Device device() const = 0;
  virtual std::string name() const = 0;

  // --- memory -----------------------------------------------------------------------------
  virtual Tensor allocate(const Shape& shape, DType dtype = DType::f32) = 0;
  virtual void copy_to_host(const Tensor& src, void* dst) = 0;
  virtual void copy_from_host(const void* src, Tensor& dst) = 0;
  virtual void fill(Tensor& t, float value) = 0;
  virtual void synchronize() = 0;
  // The CUDA stream all device work is queued on, for communicators that must order their
  // collectives or copies after it; nullptr for host backends.
  virtual CUstream_st* compute_stream() const { return nullptr; }
  // The element type of activations and their gradients: f32, or bf16 under the CUDA
  // backend's mixed precision. Parameters, their gradients, BN statistics, logits and the
  // loss stay f32 on every backend. Layers allocate their buffers in this type.
  virtual DType activation_dtype() const { return DType::f32; }
  // An uploader for one stream of input tensors (images, or labels), or null where the
  // backend computes on host memory and uses the loader's batches in place.
  virtual std::unique_ptr<BatchUploader> make_batch_uploader() { return nullptr; }

  // --- input augmentation ----------------------------------------------------------------------
  // data::Augmenter's arithmetic on the backend's device, so a device backend receives 1-byte
  // pixels and the host thread does no per-pixel work: image b of `images` (u8 {N, H, W, C})
  // is cropped at crop_yx[b] (i32 {N, 2}, offsets into the image padded by spec.pad zero
  // pixels), mirrored where flip[b] != 0 (u8 {N}), and mapped to v / 255, then
  // (v / 255 - mean[c]) / std[c]. out: f32 {N, H, W, C}.
  virtual void augment_batch(const AugmentSpec& spec, const Tensor& images, const Tensor& crop_yx,
                             const Tensor& flip, Tensor& out) = 0;

  // --- convolution (no bias here; a layer with one adds channel_bias_forward) ----------------
  // Whether conv2d_forward and conv2d_backward take a geometry with trim != 0 (false by
  // default: cuDNN's convolution descriptors pad symmetrically).
  virtual bool supports_conv_trim() const { return false; }
  virtual void conv2d_forward(const Conv2dGeometry& g, const Tensor& x, const Tensor& w,
                              Tensor& y) = 0;
  // dx may be null (the first layer needs no input gradient).
  virtual void conv2d_backward(const Conv2dGeometry& g, const Tensor& x, const Tensor& w,
                               const Tensor& dy, Tensor* dx, Tensor& dw) = 0;

  // --- batch norm ---------------------------------------------------------------------------
  // Training mode: normalises with batch statistics, updates running stats in place (variance
  // unbiased, as PyTorch), saves mean / inverse std and an opaque workspace for backward.
  virtual void batchnorm_forward_train(const BatchNormGeometry& g, const Tensor& x,
                                       const Tensor& gamma, const Tensor& beta,
                                       Tensor& running_mean, Tensor& running_var, Tensor& y,
                                       Tensor& saved_mean, Tensor& saved_var,
                                       Tensor& workspace) = 0;
  virtual void batchnorm_forward_inference(const BatchNormGeometry& g, const Tensor& x,
                                           const Tensor& gamma, const Tensor& beta,
                                           const Tensor& running_mean, const Tensor& running_var,
                                           Tensor& y) = 0;
  virtual void batchnorm_backward(const BatchNormGeometry& g, const Tensor& x, const Tensor& dy,
                                  const Tensor& gamma, const Tensor& beta,
                                  const Tensor& saved_mean, const Tensor& saved_var,
                                  const Tensor& workspace, Tensor& dx, Tensor& dgamma,
                                  Tensor& dbeta) = 0;
  // y = relu(batchnorm_forward_train(x) + residual): a residual block's last batch norm
  // (g.fuse_relu false) and its add + ReLU as one op, for backends that can save passes over
  // memory that way. Only where fuses_batchnorm_add_relu(g) (false by default; callers then
  // compose the two ops, and this default throws). Statistics, saved tensors and workspace are
  // batchnorm_forward_train's, for batchnorm_backward.
  virtual bool fuses_batchnorm_add_relu(const BatchNormGeometry& g) const;
  virtual void batchnorm_add_relu_forward_train(const BatchNormGeometry& g, const Tensor& x,
                                                const Tensor& gamma, const Tensor& beta,
                                                Tensor& running_mean, Tensor& running_var,
                                                const Tensor& residual, Tensor& y,
                                                Tensor& saved_mean, Tensor& saved_var,
                                                Tensor& workspace);

  // y = GELU(batchnorm_forward_train(x)) and its backward as one op each way, for backends that
  // save passes over memory that way. Only where fuses_batchnorm_gelu(g, dtype) (false by
  // default; callers then compose the two ops, and these defaults throw). The roundings are the
  // composed ops' (with bf16 activations: z = bn(x) rounded before the GELU). Backward takes
  // the forward's input x, the GELU output's gradient dy and the saved statistics, and gives
  // dx in x's layout, dgamma and dbeta.
  virtual bool fuses_batchnorm_gelu(const BatchNormGeometry& g, DType dtype) const;
  virtual void batchnorm_gelu_forward_train(const BatchNormGeometry& g, const Tensor& x,
                                            const Tensor& gamma, const Tensor& beta,
                                            Tensor& running_mean, Tensor& running_var, Tensor& y,
                                            Tensor& saved_mean, Tensor& saved_var);
  virtual void batchnorm_gelu_backward(const BatchNormGeometry& g, const Tensor& x,
                                       const Tensor& dy, const Tensor& gamma, const Tensor& beta,
                                       const Tensor& saved_mean, const Tensor& saved_var,
                                       Tensor& dx, Tensor& dgamma, Tensor& dbeta);
  // y = GELU(conv2d_forward(x, w) + b) as one op, for backends that save passes that way (a
  // network's first layer: airbench's whitening). Only where fuses_conv_bias_gelu(g, x's type)
  // (false by default; callers then compose conv2d_forward, channel_bias_forward and
  // gelu_forward, and the default here throws). z, where given, receives the GELU's input
  // conv + b for gelu_backward; both in the activation type, NHWC. With bf16 activations z is
  // rounded once, after the f32 bias is added (the composed ops round the convolution and then
  // the sum).
  virtual bool fuses_conv_bias_gelu(const Conv2dGeometry& g, DType x_dtype) const;
  virtual void conv_bias_gelu_forward(const Conv2dGeometry& g, const Tensor& x, const Tensor& w,
                                      const Tensor& b, Tensor* z, Tensor& y);

  // --- batch norm over several ranks' batches (SyncBatchNorm; nn/sync_batchnorm.h) ----------
  // Training-mode batch norm in four pieces, PyTorch's batch_norm_stats, batch_norm_elemt,
  // batch_norm_backward_reduce and batch_norm_backward_elemt: the caller combines the ranks'
  // per-channel results between them. x, dy, y, dx in the activation type, y and dx in x's
  // layout; per-channel tensors f32 {C}. xhat = (x - mean) * invstd; dy' = dy, or where
  // g.fuse_relu dy masked by gamma * xhat + beta > 0 (the mask recomputed from x).
  // This rank's mean and m2 = sum of (x - mean)^2, per channel, over its n*h*w values.
  virtual void batchnorm_local_moments(const BatchNormGeometry& g, const Tensor& x, Tensor& mean,
                                       Tensor& m2) = 0;
  // y = gamma * xhat + beta, then ReLU where g.fuse_relu.
  virtual void batchnorm_normalize(const BatchNormGeometry& g, const Tensor& x,
                                   const Tensor& gamma, const Tensor& beta, const Tensor& mean,
                                   const Tensor& invstd, Tensor& y) = 0;
  // Sums of dy' and of dy' * xhat over this rank's values: its dbeta and dgamma.
  virtual void batchnorm_backward_sums(const BatchNormGeometry& g, const Tensor& x,
                                       const Tensor& dy, const Tensor& gamma, const Tensor& beta,
                                       const Tensor& mean, const Tensor& invstd, Tensor& sum_dy,
                                       Tensor& sum_dy_xhat) = 0;
  // dx = gamma * invstd * (dy' - mean_dy - xhat * mean_dy_xhat), where the two means are over
  // every rank's values (the batch the statistics came from).
  virtual void batchnorm_backward_input(const BatchNormGeometry& g, const Tensor& x,
                                        const Tensor& dy, const Tensor& gamma, const Tensor& beta,
                                        const Tensor& mean, const Tensor& invstd,
                                        const Tensor& mean_dy, const Tensor& mean_dy_xhat,
                                        Tensor& dx) = 0;

  // --- elementwise ---------------------------------------------------------------------------
  // ReLU (here, fused into batch norm, and after a residual add) maps NaN to 0 on both
  // backends, as oneDNN's does; torch.relu keeps NaN.
  virtual void relu_forward(const Tensor& x, Tensor& y) = 0;
  virtual void relu_backward(const Tensor& y, const Tensor& dy, Tensor& dx) = 0;
  // y = relu(a + b): the end of a residual block.
  virtual void add_relu_forward(const Tensor& a, const Tensor& b, Tensor& y) = 0;
  // dx = dy * (y > 0): the gradient reaching both branches of the block.
  virtual void add_relu_backward(const Tensor& y, const Tensor& dy, Tensor& dx) = 0;
  // y += x (gradient accumulation where a tensor fans out).
  virtual void accumulate(const Tensor& x, Tensor& y) = 0;
  // y = (y + x) * (relu_output > 0): the two branch gradients of a residual block summed and
  // passed back through the ReLU that made the block's input, in one pass. The default runs
  // accumulate, then relu_backward in place; the CPU and CUDA backends fuse them.
  virtual void accumulate_relu_backward(const Tensor& x, const Tensor& relu_output, Tensor& y);

  // GELU, the erf form (torch.nn.GELU(), approximate='none'): y = x * Phi(x) = x/2 * (1 +
  // erf(x / sqrt 2)). y in x's shape, layout and type.
  virtual void gelu_forward(const Tensor& x, Tensor& y) = 0;
  // dx = dy * (Phi(x) + x * phi(x)): from the forward's INPUT x (GELU is not invertible from
  // its output). dx in x's layout.
  virtual void gelu_backward(const Tensor& x, const Tensor& dy, Tensor& dx) = 0;
  // y = alpha * x, elementwise (a constant scale, e.g. of the logits; its backward is the same
  // op on dy). y in x's shape, layout and type; y may be x itself.
  virtual void scale(const Tensor& x, float alpha, Tensor& y) = 0;
  // A per-channel bias (the bias of a convolution): y[..., c] += b[c] in place over an
  // activation {N, H, W, C} in its own layout; b f32 {C}.
  virtual void channel_bias_forward(const Tensor& b, Tensor& y) = 0;
  // db[c] = sum of dy[..., c] over N, H, W (overwritten; f32 {C}, summed in f32).
  virtual void channel_bias_backward(const Tensor& dy, Tensor& db) = 0;

  // --- option-A shortcut (SubsamplePadGeometry) --------------------------------------------------
  // Forward writes every element of y: the subsampled input, then zeros in the padded channels.
  virtual void subsample_pad_forward(const SubsamplePadGeometry& g, const Tensor& x, Tensor& y) = 0;
  // dx {n, h, w, c_in} = the adjoint: dy's first c_in channels scattered back to the pixels the
  // forward read, 0 at every other pixel; the padded channels' gradient is dropped. Every
  // element of dx is written (overwrite, as every backward op).
  virtual void subsample_pad_backward(const SubsamplePadGeometry& g, const Tensor& dy,
                                      Tensor& dx) = 0;

  // --- pooling -------------------------------------------------------------------------------
  // Max pooling: the first maximum in row-major window order wins. A NaN wins over every
  // number (the window's last NaN; PyTorch's rule) on CUDA and in the CPU's kernel = stride
  // windows (airbench's pools, on AVX-512); oneDNN's pooling, the CPU's other windows (ResNet's
  // 3x3 stride-2 stem pool), drops NaNs; the step's NaN guard still sees one through the
  // weight gradient of a trained layer that consumed it (0 x NaN).
  virtual void maxpool_forward(const PoolGeometry& g, const Tensor& x, Tensor& y,
                               Tensor& workspace) = 0;
  virtual void maxpool_backward(const PoolGeometry& g, const Tensor& dy, const Tensor& workspace,
                                Tensor& dx) = 0;
  // {N, H, W, C} -> {N, C}
  virtual void global_avgpool_forward(const Tensor& x, Tensor& y) = 0;
  virtual void global_avgpool_backward(const Tensor& dy, Tensor& dx) = 0;

  // --- linear: y = x w^T + b -------------------------------------------------------------------
  // An undefined b means no bias (y = x w^T). Backward always writes db (the column sums of dy);
  // a layer without bias ignores it. y, dw and db are f32, dx in x's type. A bf16 x: the CPU
  // widens it and computes in f32 with the f32 weights and dy; CUDA multiplies bf16 operands
  // (the weights and dy rounded to bf16, as torch's autocast does), ~2^-9 relative apart.
  virtual void linear_forward(const Tensor& x, const Tensor& w, const Tensor& b, Tensor& y) = 0;
  virtual void linear_backward(const Tensor& x, const Tensor& w, const Tensor& dy, Tensor& dx,
                               Tensor& dw, Tensor& db) = 0;

  // --- loss ------------------------------------------------------------------------------------
  // Mean softmax cross-entropy over the batch with optional label smoothing (PyTorch's
  // definition). labels: i32 {N}. Writes dlogits (already divided by N) and returns the loss;
  // `correct` receives the number of argmax hits.
  virtual float softmax_cross_entropy(const Tensor& logits, const Tensor& labels,
                                      float label_smoothing, Tensor& dlogits,
                                      int64_t& correct) = 0;
  // The same in two halves, for captured work: the first queues the computation (and may be
  // captured), the second waits for it and returns what softmax_cross_entropy would have
  // (throwing the same DataError for a label out of range). Both take the same logits and
  // labels, so a replayed capture can be read without queueing anew. By default the first
  // computes everything at once.
  virtual void queue_softmax_cross_entropy(const Tensor& logits, const Tensor& labels,
                                           float label_smoothing, Tensor& dlogits);
  virtual float read_queued_loss(const Tensor& logits, const Tensor& labels, int64_t& correct);

  // --- captured work ---------------------------------------------------------------------------
  // Records the device work that `work` queues (it must only queue: no allocation, no waiting
  // for the device, no host reads of device data) for replay, without running it. Null where
  // the backend has no such thing (host backends); throws where capturing fails.
  virtual std::unique_ptr<CapturedWork> capture(const std::function<void()>& work);

  // --- optimizer -------------------------------------------------------------------------------
  // PyTorch SGD over flat buffers. decay_mask (f32, 1 or 0 per element) selects the elements
  // that get weight decay; an undefined mask decays all of them.
  virtual void sgd_step(const SgdHyper& h, Tensor& params, const Tensor& grads,
                        Tensor& momentum_buffer, const Tensor& decay_mask) = 0;
  // Sum of squares of a buffer (gradient-norm checks for NaN/Inf).
  virtual double sum_of_squares(const Tensor& t) = 0;

 private:
  // What the default queue_softmax_cross_entropy computed, for read_queued_loss.
  float queued_loss_ = 0.f;
  int64_t queued_correct_ = 0;
};

// What --precision bf16 makes of the CPU backend.
enum class CpuBf16 {
  off,           // f32 throughout
  convolutions,  // convolutions on bf16 operands (f32 accumulation); activations stay f32
  activations,   // and activations and their gradients stored in bf16 (activation_dtype()),
                 // for networks whose every activation op has a bf16 kernel here (airbench)
};

// blocked_activations: nChw16c activations inside stages of 32+ channels
// (cpu/activation_layout.h); false keeps them all NHWC. bf16 other than off: UsageError where
// !cpu_has_native_bf16().
std::unique_ptr<Backend> make_cpu_backend(int threads = 0, bool blocked_activations = true,
                                          CpuBf16 bf16 = CpuBf16::off);
// Whether this CPU has bf16 arithmetic (AVX512-BF16 or AMX), as oneDNN detects it (and as
// ONEDNN_MAX_CPU_ISA caps it).
bool cpu_has_native_bf16();
// The activation layout oneDNN's bf16 convolutions read and write on this CPU without a
// reorder: NHWC where it has AMX (brgconv's NHWC kernels), nChw16c where it has AVX512-BF16
// only (the blocked jit_bf16 kernels; tag::any picks those there).
Layout cpu_bf16_convolution_layout();

}  // namespace dp
