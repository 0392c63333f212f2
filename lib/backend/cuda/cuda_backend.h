// The CUDA implementation of dp::Backend: convolution and batch norm on cuDNN, the linear
// layer on cuBLAS, everything else in the backend's own kernels (*_kernels.cu). All work is
// queued on one stream; only the calls that hand a value to the host (copy_to_host, the
// loss, sum_of_squares, synchronize) wait for it.
//
// Outputs passed in undefined, on the host or too small are replaced by device tensors from
// the caching allocator (the layers pass their own preallocated device buffers, so a
// steady-state step allocates nothing).
//
// cuda_backend.cpp holds the core (context, memory, element types, capture); each group of ops
// has its own cuda_backend_<role>.cpp, and their kernel launches go through checked_launch.h.
#pragma once

#include <map>
#include <tuple>

#include "backend/backend.h"
#include "backend/cuda/cuda_context.h"
#include "backend/cuda/cudnn_conv.h"

namespace dp::cuda {

class CudaBackend final : public Backend {
 public:
  explicit CudaBackend(const CudaOptions& options);
  ~CudaBackend() override;

  Device device() const override { return Device::cuda; }
  std::string name() const override;
  DType activation_dtype() const override {
    return ctx_.options.mixed_bf16 ? DType::bf16 : DType::f32;
  }
  std::unique_ptr<BatchUploader> make_batch_uploader() override;

  Tensor allocate(const Shape& shape, DType dtype) override;
  void copy_to_host(const Tensor& src, void* dst) override;
  void copy_from_host(const void* src, Tensor& dst) override;
  void fill(Tensor& t, float value) override;
  void synchronize() override;

  void augment_batch(const AugmentSpec& spec, const Tensor& images, const Tensor& crop_yx,
                     const Tensor& flip, Tensor& out) override;

  void conv2d_forward(const Conv2dGeometry& g, const Tensor& x, const Tensor& w,
                      Tensor& y) override;
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

  // Own kernels, cuDNN's batch norm has no place for a cross-rank reduction
  // (cuda_backend_sync_batchnorm.cpp).
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
  void gelu_forward(const Tensor& x, Tensor& y) override;
  void gelu_backward(const Tensor& x, const Tensor& dy, Tensor& dx) override;
  void scale(const Tensor& x, float alpha, Tensor& y) override;
  void channel_bias_forward(const Tensor& b, Tensor& y) override;
  void channel_bias_backward(const Tensor& dy, Tensor& db) override;

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
  void queue_softmax_cross_entropy(const Tensor& logits, const Tensor& labels,
                                   float label_smoothing, Tensor& dlogits) override;
  float read_queued_loss(const Tensor& logits, const Tensor& labels, int64_t& correct) override;
  std::unique_ptr<CapturedWork> capture(const std::function<void()>& work) override;

  void sgd_step(const SgdHyper& h, Tensor& params, const Tensor& grads, Tensor& momentum_buffer,
                const Tensor& decay_mask) override;
  double sum_of_squares(const Tensor& t) override;

  // The compute stream (for a communicator or a copy stream that must order against it).
  cudaStream_t stream() const { return ctx_.s(); }
  CUstream_st* compute_stream() const override { return ctx_.s(); }
  size_t cached_algorithm_entries() const { return conv_.cached_entries(); }

  // Whether training batch norm of this geometry and type runs in cuDNN's persistent mode
  // (asked for by CudaOptions::batchnorm_persistent, and accepted by cuDNN; tests ask this).
  bool batchnorm_runs_persistent(const BatchNormGeometry& g, DType type);

 private:
  // `t` as a device tensor of `shape`: reused when it already is one with room, else
  // replaced by a fresh allocation.
  Tensor& output(Tensor& t, const Shape& shape, DType dtype = DType::f32);
  // `x` in the activation type: itself, or (an f32 network input under mixed precision) a
  // bf16 copy in scratch memory, valid until the next op that converts.
  Tensor as_activation(const Tensor& x);
  // `t` as `type` for a library call: its own data, or an f32 tensor rounded to bf16 in
  // `scratch` (valid until the next op using that scratch).
  const void* in_type(const Tensor& t, DType type, ScratchBuffer& scratch);
  // C = op(A) op(B) on cuBLAS (column-major), A and B of `ab_type`, f32 accumulation.
  void gemm(bool transpose_a, bool transpose_b, int m, int n, int k, DType ab_type, const void* a,
            int lda, const void* b, int ldb, float beta, void* c, DType c_type, int ldc);
  // The batch-norm descriptors of one geometry: the NHWC data and the {1, C, 1, 1} statistics.
  struct BnDescs {
    TensorDesc data, stats;
    // Training mode: SPATIAL, or SPATIAL_PERSISTENT through the Ex calls with their scratch
    // sizes (a geometry cuDNN refuses in PERSISTENT mode drops back to SPATIAL for good).
    cudnnBatchNormMode_t train_mode = CUDNN_BATCHNORM_SPATIAL;
    size_t forward_workspace = 0, backward_workspace = 0, reserve = 0;
  };
  BnDescs& bn_descs(const BatchNormGeometry& g, DType type);
  // The fused ReLU of a training batch norm: y = relu of the exactly rounded affine map of x by
  // the saved statistics (sync_bn_kernels.h), replacing cuDNN's y (x and y must not alias).
  void relu_from_saved_statistics(const BatchNormGeometry& g, const Tensor& x, const Tensor& gamma,
                                  const Tensor& beta, const Tensor& saved_mean,
                                  const Tensor& saved_var, Tensor& y);
  // The gradient entering a batch norm with a fused ReLU: dy where that same map is > 0, so
  // exactly where forward kept a value (recomputed instead of stored in forward). In activation
  // scratch memory. Both queue unchecked, for the caller's checked_launch.
  const void* relu_masked_gradient(const BatchNormGeometry& g, const Tensor& x, const Tensor& dy,
                                   const Tensor& gamma, const Tensor& beta,
                                   const Tensor& saved_mean, const Tensor& saved_var);

  // Scratch for the per-chunk partial sums of sync_bn_kernels.h's per-channel reductions over
  // `rows` rows of c channels: the sync batch norm pieces' and the bias gradient's.
  float* channel_partials(int64_t rows, int64_t c, int terms);

  CudaContext ctx_;
  CudnnConv conv_;
  std::map<std::tuple<int64_t, int64_t, int64_t, int64_t, int>, BnDescs> bn_cache_;
  // Host side of the loss: per-row values copied back in one transfer.
  Tensor loss_rows_;  // device: f32 loss, i32 hit, i32 bad per row
  std::vector<char> loss_host_;
  Tensor norm_partials_;
  // augment_batch's normalisation on the device (f32 {2, C}: mean, then std), uploaded again
  // only when the host values change.
  std::vector<float> augment_mean_, augment_std_;
  Tensor augment_stats_;
};

}  // namespace dp::cuda
