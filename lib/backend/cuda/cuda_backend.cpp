// CudaBackend: memory and copies, batch norm on cuDNN, the linear layer on cuBLAS, and the
// launches of the backend's own kernels. Convolution lives in cudnn_conv.cpp.
#include "backend/cuda/cuda_backend.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <numeric>
#include <type_traits>

#include "backend/cuda/cuda_graph.h"
#include "backend/cuda/kernels.h"
#include "backend/cuda/pinned_uploader.h"
#include "backend/operand_checks.h"

namespace dp::cuda {
namespace {

void check_device(const Tensor& t, const char* op, const char* what) {
  DP_CHECK(t.defined() && t.device() == Device::cuda, "{}: {} must be a CUDA tensor", op, what);
}

void check_same_type(const Tensor& a, const Tensor& b, const char* op) {
  DP_CHECK(a.dtype() == b.dtype(), "{}: tensors of different element types", op);
}

const float* f(const Tensor& t) { return t.data<float>(); }
float* f(Tensor& t) { return t.data<float>(); }

// Runs `fn(tag)` with a null pointer of the activation element type of `t` (float, or bf16
// under mixed precision), so one body serves both: `using T = ElementOf<decltype(tag)>`.
template <typename Fn>
void with_activation_type(const Tensor& t, const char* op, Fn&& fn) {
  if (t.dtype() == DType::f32)
    fn(static_cast<float*>(nullptr));
  else if (t.dtype() == DType::bf16)
    fn(static_cast<kernels::bf16*>(nullptr));
  else
    throw Error(ExitCode::internal, fmt::format("{}: activations must be f32 or bf16", op));
}
template <typename Tag>
using ElementOf = std::remove_pointer_t<Tag>;

cudaDataType_t cublas_type(DType type) { return type == DType::bf16 ? CUDA_R_16BF : CUDA_R_32F; }

}  // namespace

CudaContext::CudaContext(const CudaOptions& o) : options(o) {
  DP_CUDA_CHECK(cudaSetDevice(o.device));
  cudaStream_t s;
  DP_CUDA_CHECK(cudaStreamCreate(&s));
  stream = Stream(s);
  cudnnHandle_t h;
  DP_CUDNN_CHECK(cudnnCreate(&h));
  cudnn = CudnnHandle(h);
  DP_CUDNN_CHECK(cudnnSetStream(h, s));
  cublasHandle_t b;
  DP_CUBLAS_CHECK(cublasCreate(&b));
  cublas = CublasHandle(b);
  DP_CUBLAS_CHECK(cublasSetStream(b, s));
  DP_CUBLAS_CHECK(
      cublasSetMathMode(b, o.allow_tf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH));
  pool = std::make_shared<DeviceAllocator>(o.device);
}

CudaBackend::CudaBackend(const CudaOptions& options) : ctx_(options), conv_(ctx_) {}

CudaBackend::~CudaBackend() {
  // Let queued work finish before the buffers it uses go back to the pool.
  (void)cudaStreamSynchronize(ctx_.s());
}

std::string CudaBackend::name() const {
  cudaDeviceProp prop{};
  std::string gpu = cudaGetDeviceProperties(&prop, ctx_.options.device) == cudaSuccess
                        ? std::string(prop.name)
                        : std::string("unknown GPU");
  const char* precision = ctx_.options.mixed_bf16   ? "BF16 mixed precision"
                          : ctx_.options.allow_tf32 ? "TF32"
                                                    : "FP32";
  return fmt::format("cuda (GPU {}: {}, cuDNN {}, {}{}{})", ctx_.options.device, gpu,
                     cudnnGetVersion(), precision,
                     ctx_.options.deterministic ? ", deterministic" : "",
                     ctx_.options.batchnorm_persistent ? ", persistent batch norm" : "");
}

// --- memory ------------------------------------------------------------------------------------

Tensor CudaBackend::allocate(const Shape& shape, DType dtype) {
  const size_t bytes = static_cast<size_t>(dp::numel(shape)) * dtype_size(dtype);
  std::shared_ptr<void> block = DeviceAllocator::allocate(ctx_.pool, bytes);
  void* p = block.get();
  return Tensor::view(p, shape, dtype, Device::cuda, std::move(block));
}

Tensor& CudaBackend::output(Tensor& t, const Shape& shape, DType dtype) {
  const size_t need = static_cast<size_t>(dp::numel(shape)) * dtype_size(dtype);
  // Against the capacity, not the current shape: after a partial batch the next full one
  // must find its old memory, or it would allocate (and release) inside a CUDA graph capture.
  if (t.defined() && t.device() == Device::cuda && need <= t.capacity())
    t.ensure(shape, dtype);  // a view: keeps its memory, takes the new shape
  else
    t = allocate(shape, dtype);
  return t;
}

std::unique_ptr<BatchUploader> CudaBackend::make_batch_uploader() {
  return std::make_unique<PinnedUploader>(ctx_.pool, ctx_.s());
}

Tensor CudaBackend::as_activation(const Tensor& x) {
  const DType type = activation_dtype();
  if (x.dtype() == type) return x;
  void* converted = const_cast<void*>(in_type(x, type, ctx_.converted));
  return Tensor::view(converted, x.shape(), type, Device::cuda);
}

void CudaBackend::copy_to_host(const Tensor& src, void* dst) {
  check_device(src, "copy_to_host", "source");
  DP_CUDA_CHECK(cudaMemcpyAsync(dst, src.data<void>(), src.bytes(), cudaMemcpyDeviceToHost,
                                ctx_.s()));
  DP_CUDA_CHECK(cudaStreamSynchronize(ctx_.s()));
}

void CudaBackend::copy_from_host(const void* src, Tensor& dst) {
  check_device(dst, "copy_from_host", "destination");
  // From pageable memory the call returns once `src` is staged, so the caller may reuse it.
  DP_CUDA_CHECK(cudaMemcpyAsync(dst.data<void>(), src, dst.bytes(), cudaMemcpyHostToDevice,
                                ctx_.s()));
}

void CudaBackend::fill(Tensor& t, float value) {
  check_device(t, "fill", "tensor");
  switch (t.dtype()) {
    case DType::f32:
      kernels::fill_f32(t.data<float>(), t.numel(), value, ctx_.s());
      break;
    case DType::i32:
      kernels::fill_i32(t.data<int32_t>(), t.numel(), static_cast<int32_t>(value), ctx_.s());
      break;
    case DType::u8:
      kernels::fill_u8(t.data<uint8_t>(), t.numel(), static_cast<uint8_t>(value), ctx_.s());
      break;
    case DType::bf16:
      kernels::fill_bf16(t.data<kernels::bf16>(), t.numel(), value, ctx_.s());
      break;
  }
  DP_CUDA_CHECK(cudaGetLastError());
}

void CudaBackend::synchronize() { DP_CUDA_CHECK(cudaStreamSynchronize(ctx_.s())); }

// --- convolution ---------------------------------------------------------------------------------

void CudaBackend::conv2d_forward(const Conv2dGeometry& g, const Tensor& x, const Tensor& w,
                                 Tensor& y) {
  check_device(x, "conv2d_forward", "input");
  check_device(w, "conv2d_forward", "weight");
  DP_CHECK(x.shape() == (Shape{g.n, g.h, g.w, g.c_in}), "conv input {} does not match geometry",
           to_string(x.shape()));
  DP_CHECK(w.shape() == (Shape{g.c_out, g.c_in, g.kernel, g.kernel}),
           "conv weight {} does not match geometry", to_string(w.shape()));
  const DType type = activation_dtype();
  const Tensor input = as_activation(x);
  output(y, {g.n, g.out_h(), g.out_w(), g.c_out}, type);
  conv_.forward(g, type, input.data<void>(), f(w), y.data<void>());
}

void CudaBackend::conv2d_backward(const Conv2dGeometry& g, const Tensor& x, const Tensor& w,
                                  const Tensor& dy, Tensor* dx, Tensor& dw) {
  check_device(x, "conv2d_backward", "input");
  check_device(w, "conv2d_backward", "weight");
  check_device(dy, "conv2d_backward", "output gradient");
  DP_CHECK(x.shape() == (Shape{g.n, g.h, g.w, g.c_in}), "conv input {} does not match geometry",
           to_string(x.shape()));
  DP_CHECK(w.shape() == (Shape{g.c_out, g.c_in, g.kernel, g.kernel}),
           "conv weight {} does not match geometry", to_string(w.shape()));
  DP_CHECK(dy.shape() == (Shape{g.n, g.out_h(), g.out_w(), g.c_out}),
           "conv output gradient {} does not match geometry", to_string(dy.shape()));
  const DType type = activation_dtype();
  DP_CHECK(dy.dtype() == type, "conv output gradient is not in the activation type");
  if (dx) {
    output(*dx, x.shape(), type);
    conv_.backward_data(g, type, f(w), dy.data<void>(), dx->data<void>());
  }
  output(dw, w.shape());
  const Tensor input = as_activation(x);
  conv_.backward_filter(g, type, input.data<void>(), dy.data<void>(), f(dw));
}

// --- batch norm ----------------------------------------------------------------------------------

CudaBackend::BnDescs& CudaBackend::bn_descs(const BatchNormGeometry& g, DType type) {
  auto key = std::make_tuple(g.n, g.h, g.w, g.c, static_cast<int>(type));
  auto it = bn_cache_.find(key);
  if (it != bn_cache_.end()) return it->second;
  // With bf16 data cuDNN derives f32 statistics: the mixed-precision split PyTorch uses.
  BnDescs d{nhwc_desc(g.n, g.c, g.h, g.w, type), make_tensor_desc()};
  DP_CUDNN_CHECK(cudnnDeriveBNTensorDescriptor(d.stats.get(), d.data.get(), CUDNN_BATCHNORM_SPATIAL));
  if (ctx_.options.batchnorm_persistent) {
    const cudnnBatchNormMode_t mode = CUDNN_BATCHNORM_SPATIAL_PERSISTENT;
    const cudnnBatchNormOps_t ops = CUDNN_BATCHNORM_OPS_BN;
    cudnnHandle_t h = ctx_.cudnn.get();
    const cudnnTensorDescriptor_t x = d.data.get();
    // No z (residual) and no fused activation: the layers apply ReLU themselves. The size
    // queries get the descriptors PyTorch passes them (z and y described like x).
    const bool sized =
        cudnnGetBatchNormalizationForwardTrainingExWorkspaceSize(
            h, mode, ops, x, x, x, d.stats.get(), nullptr, &d.forward_workspace) ==
            CUDNN_STATUS_SUCCESS &&
        cudnnGetBatchNormalizationBackwardExWorkspaceSize(h, mode, ops, x, x, x, nullptr, x,
                                                          d.stats.get(), nullptr,
                                                          &d.backward_workspace) ==
            CUDNN_STATUS_SUCCESS &&
        cudnnGetBatchNormalizationTrainingExReserveSpaceSize(h, mode, ops, nullptr, x,
                                                             &d.reserve) == CUDNN_STATUS_SUCCESS;
    if (sized) d.train_mode = mode;
  }
  return bn_cache_.emplace(key, std::move(d)).first->second;
}

bool CudaBackend::batchnorm_runs_persistent(const BatchNormGeometry& g, DType type) {
  return bn_descs(g, type).train_mode == CUDNN_BATCHNORM_SPATIAL_PERSISTENT;
}

// cuDNN's persistent NHWC kernels load every operand 16 bytes at a time: an H200 run faulted
// (misaligned read) on running statistics 4 bytes past a 16-byte boundary. Operands that are
// not all aligned run the plain calls instead.
static bool aligned_for_persistent_bn(std::initializer_list<const Tensor*> operands) {
  constexpr uintptr_t kVectorBytes = 16;
  for (const Tensor* t : operands)
    if (reinterpret_cast<uintptr_t>(t->data<void>()) % kVectorBytes != 0) return false;
  return true;
}

// Every operand on the device, in the shapes check_batchnorm_operands wants.
static void check_bn(const BatchNormGeometry& g, const Tensor& x,
                     std::initializer_list<const Tensor*> per_channel) {
  check_device(x, "batchnorm", "input");
  for (const Tensor* t : per_channel) check_device(*t, "batchnorm", "per-channel tensor");
  check_batchnorm_operands(g, x, per_channel);
}

void CudaBackend::batchnorm_forward_train(const BatchNormGeometry& g, const Tensor& x,
                                          const Tensor& gamma, const Tensor& beta,
                                          Tensor& running_mean, Tensor& running_var, Tensor& y,
                                          Tensor& saved_mean, Tensor& saved_var,
                                          Tensor& workspace) {
  check_bn(g, x, {&gamma, &beta, &running_mean, &running_var});
  DP_CHECK(g.n * g.h * g.w > 1, "batchnorm training needs more than one value per channel");
  output(y, x.shape(), x.dtype());
  output(saved_mean, {g.c});
  output(saved_var, {g.c});  // holds 1/sqrt(var + eps): what cuDNN's backward takes
  BnDescs& d = bn_descs(g, x.dtype());
  const float one = 1.f, zero = 0.f;
  // cuDNN updates the running variance with the unbiased batch variance, as PyTorch does
  // (running = (1 - factor) * running + factor * batch).
  cudnnStatus_t persistent = CUDNN_STATUS_NOT_SUPPORTED;
  if (d.train_mode == CUDNN_BATCHNORM_SPATIAL_PERSISTENT &&
      aligned_for_persistent_bn({&x, &y, &gamma, &beta, &running_mean, &running_var,
                                 &saved_mean, &saved_var})) {
    // The reserve space lives in the layer's workspace until backward; a non-empty workspace
    // (one byte at least) tells backward that this forward ran persistent.
    output(workspace, {static_cast<int64_t>(std::max<size_t>(d.reserve, 1))}, DType::u8);
    void* scratch = d.forward_workspace ? ctx_.workspace.get(ctx_.pool, d.forward_workspace)
                                        : nullptr;
    persistent = cudnnBatchNormalizationForwardTrainingEx(
        ctx_.cudnn.get(), d.train_mode, CUDNN_BATCHNORM_OPS_BN, &one, &zero, d.data.get(),
        x.data<void>(), nullptr, nullptr, d.data.get(), y.data<void>(), d.stats.get(), f(gamma),
        f(beta), static_cast<double>(g.momentum), f(running_mean), f(running_var),
        static_cast<double>(g.eps), f(saved_mean), f(saved_var), nullptr, scratch,
        d.forward_workspace, d.reserve ? workspace.data<void>() : nullptr, d.reserve);
    if (persistent == CUDNN_STATUS_NOT_SUPPORTED)
      d.train_mode = CUDNN_BATCHNORM_SPATIAL;  // this geometry: the plain calls from now on
    else
      DP_CUDNN_CHECK(persistent);
  }
  if (persistent != CUDNN_STATUS_SUCCESS) {
    // An empty workspace: backward runs the plain call too. Emptied, not dropped: a partial
    // batch's geometry may run plain, and releasing the memory would cost the graphs.
    if (workspace.defined()) output(workspace, {0}, DType::u8);
    DP_CUDNN_CHECK(cudnnBatchNormalizationForwardTraining(
        ctx_.cudnn.get(), CUDNN_BATCHNORM_SPATIAL, &one, &zero, d.data.get(), x.data<void>(),
        d.data.get(), y.data<void>(), d.stats.get(), f(gamma), f(beta),
        static_cast<double>(g.momentum), f(running_mean), f(running_var),
        static_cast<double>(g.eps), f(saved_mean), f(saved_var)));
  }
  if (g.fuse_relu) relu_forward(y, y);
  DP_CUDA_CHECK(cudaGetLastError());
}

void CudaBackend::batchnorm_forward_inference(const BatchNormGeometry& g, const Tensor& x,
                                              const Tensor& gamma, const Tensor& beta,
                                              const Tensor& running_mean,
                                              const Tensor& running_var, Tensor& y) {
  check_bn(g, x, {&gamma, &beta, &running_mean, &running_var});
  output(y, x.shape(), x.dtype());
  BnDescs& d = bn_descs(g, x.dtype());
  const float one = 1.f, zero = 0.f;
  DP_CUDNN_CHECK(cudnnBatchNormalizationForwardInference(
      ctx_.cudnn.get(), CUDNN_BATCHNORM_SPATIAL, &one, &zero, d.data.get(), x.data<void>(),
      d.data.get(), y.data<void>(), d.stats.get(), f(gamma), f(beta), f(running_mean),
      f(running_var), static_cast<double>(g.eps)));
  if (g.fuse_relu) relu_forward(y, y);
  DP_CUDA_CHECK(cudaGetLastError());
}

void CudaBackend::batchnorm_backward(const BatchNormGeometry& g, const Tensor& x, const Tensor& dy,
                                     const Tensor& gamma, const Tensor& beta,
                                     const Tensor& saved_mean, const Tensor& saved_var,
                                     const Tensor& workspace, Tensor& dx, Tensor& dgamma,
                                     Tensor& dbeta) {
  check_bn(g, x, {&gamma, &beta, &saved_mean, &saved_var});
  check_device(dy, "batchnorm_backward", "output gradient");
  DP_CHECK(dy.shape() == x.shape(), "batchnorm output gradient {} does not match input {}",
           to_string(dy.shape()), to_string(x.shape()));
  check_same_type(x, dy, "batchnorm_backward");
  output(dx, x.shape(), x.dtype());
  output(dgamma, {g.c});
  output(dbeta, {g.c});
  const void* grad_in = dy.data<void>();
  if (g.fuse_relu) {
    // The ReLU's mask, recomputed from the saved statistics instead of stored in forward.
    void* masked = ctx_.activation.get(ctx_.pool, x.bytes());
    with_activation_type(x, "batchnorm_backward", [&](auto tag) {
      using T = ElementOf<decltype(tag)>;
      kernels::bn_relu_mask(x.data<T>(), dy.data<T>(), f(gamma), f(beta), f(saved_mean),
                            f(saved_var), static_cast<T*>(masked), x.numel(), g.c, ctx_.s());
    });
    grad_in = masked;
  }
  BnDescs& d = bn_descs(g, x.dtype());
  const float one = 1.f, zero = 0.f;
  // Persistent exactly when the forward was: it left its reserve space in the workspace.
  if (d.train_mode == CUDNN_BATCHNORM_SPATIAL_PERSISTENT && workspace.defined() &&
      workspace.bytes() > 0) {
    DP_CHECK(workspace.bytes() >= d.reserve,
             "batchnorm_backward: the forward's reserve space is too small");
    DP_CHECK(aligned_for_persistent_bn({&x, &dy, &dx, &gamma, &beta, &dgamma, &dbeta}),
             "batchnorm_backward: operands of a persistent forward are not 16-byte aligned");
    void* scratch = d.backward_workspace ? ctx_.workspace.get(ctx_.pool, d.backward_workspace)
                                         : nullptr;
    DP_CUDNN_CHECK(cudnnBatchNormalizationBackwardEx(
        ctx_.cudnn.get(), d.train_mode, CUDNN_BATCHNORM_OPS_BN, &one, &zero, &one, &zero,
        d.data.get(), x.data<void>(), nullptr, nullptr, d.data.get(), grad_in, nullptr, nullptr,
        d.data.get(), dx.data<void>(), d.stats.get(), f(gamma), f(beta), f(dgamma), f(dbeta),
        static_cast<double>(g.eps), f(saved_mean), f(saved_var), nullptr, scratch,
        d.backward_workspace, d.reserve ? const_cast<void*>(workspace.data<void>()) : nullptr,
        d.reserve));
    DP_CUDA_CHECK(cudaGetLastError());
    return;
  }
  DP_CUDNN_CHECK(cudnnBatchNormalizationBackward(
      ctx_.cudnn.get(), CUDNN_BATCHNORM_SPATIAL, &one, &zero, &one, &zero, d.data.get(),
      x.data<void>(), d.data.get(), grad_in, d.data.get(), dx.data<void>(), d.stats.get(),
      f(gamma), f(dgamma), f(dbeta), static_cast<double>(g.eps), f(saved_mean),
      f(saved_var)));
  DP_CUDA_CHECK(cudaGetLastError());
}

// --- elementwise ---------------------------------------------------------------------------------

void CudaBackend::relu_forward(const Tensor& x, Tensor& y) {
  check_device(x, "relu_forward", "input");
  output(y, x.shape(), x.dtype());
  with_activation_type(x, "relu_forward", [&](auto tag) {
    using T = ElementOf<decltype(tag)>;
    kernels::relu_forward(x.data<T>(), y.data<T>(), x.numel(), ctx_.s());
  });
  DP_CUDA_CHECK(cudaGetLastError());
}

void CudaBackend::relu_backward(const Tensor& y, const Tensor& dy, Tensor& dx) {
  check_same_numel(y, dy, "relu_backward");
  check_device(y, "relu_backward", "output");
  check_device(dy, "relu_backward", "output gradient");
  check_same_type(y, dy, "relu_backward");
  output(dx, dy.shape(), dy.dtype());
  with_activation_type(y, "relu_backward", [&](auto tag) {
    using T = ElementOf<decltype(tag)>;
    kernels::relu_backward(y.data<T>(), dy.data<T>(), dx.data<T>(), y.numel(), ctx_.s());
  });
  DP_CUDA_CHECK(cudaGetLastError());
}

void CudaBackend::add_relu_forward(const Tensor& a, const Tensor& b, Tensor& y) {
  check_same_numel(a, b, "add_relu_forward");
  check_device(a, "add_relu_forward", "first input");
  check_device(b, "add_relu_forward", "second input");
  check_same_type(a, b, "add_relu_forward");
  output(y, a.shape(), a.dtype());
  with_activation_type(a, "add_relu_forward", [&](auto tag) {
    using T = ElementOf<decltype(tag)>;
    kernels::add_relu_forward(a.data<T>(), b.data<T>(), y.data<T>(), a.numel(), ctx_.s());
  });
  DP_CUDA_CHECK(cudaGetLastError());
}

void CudaBackend::add_relu_backward(const Tensor& y, const Tensor& dy, Tensor& dx) {
  relu_backward(y, dy, dx);  // the same mask reaches both branches
}

void CudaBackend::accumulate(const Tensor& x, Tensor& y) {
  check_same_numel(x, y, "accumulate");
  check_device(x, "accumulate", "input");
  check_device(y, "accumulate", "output");
  check_same_type(x, y, "accumulate");
  with_activation_type(x, "accumulate", [&](auto tag) {
    using T = ElementOf<decltype(tag)>;
    kernels::accumulate(x.data<T>(), y.data<T>(), x.numel(), ctx_.s());
  });
  DP_CUDA_CHECK(cudaGetLastError());
}

void CudaBackend::accumulate_relu_backward(const Tensor& x, const Tensor& relu_output, Tensor& y) {
  check_same_numel(x, y, "accumulate_relu_backward");
  check_same_numel(relu_output, y, "accumulate_relu_backward mask");
  check_device(x, "accumulate_relu_backward", "input");
  check_device(relu_output, "accumulate_relu_backward", "ReLU output");
  check_device(y, "accumulate_relu_backward", "output");
  check_same_type(x, y, "accumulate_relu_backward");
  check_same_type(relu_output, y, "accumulate_relu_backward mask");
  with_activation_type(x, "accumulate_relu_backward", [&](auto tag) {
    using T = ElementOf<decltype(tag)>;
    kernels::accumulate_relu_backward(x.data<T>(), relu_output.data<T>(), y.data<T>(), x.numel(),
                                      ctx_.s());
  });
  DP_CUDA_CHECK(cudaGetLastError());
}

// --- pooling -------------------------------------------------------------------------------------

static kernels::PoolShape pool_shape(const PoolGeometry& g) {
  DP_CHECK(g.kernel > 0 && g.stride > 0 && g.pad >= 0 && 2 * g.pad <= g.kernel && g.out_h() > 0 &&
               g.out_w() > 0,
           "bad pooling geometry k={} s={} p={} on {}x{}", g.kernel, g.stride, g.pad, g.h, g.w);
  return {g.n, g.h, g.w, g.c, g.out_h(), g.out_w(), g.kernel, g.stride, g.pad};
}

void CudaBackend::maxpool_forward(const PoolGeometry& g, const Tensor& x, Tensor& y,
                                  Tensor& workspace) {
  const kernels::PoolShape p = pool_shape(g);
  check_device(x, "maxpool_forward", "input");
  DP_CHECK(x.shape() == (Shape{g.n, g.h, g.w, g.c}), "maxpool input {} does not match geometry",
           to_string(x.shape()));
  output(y, {g.n, g.out_h(), g.out_w(), g.c}, x.dtype());
  output(workspace, y.shape(), DType::i32);  // argmax per output
  with_activation_type(x, "maxpool_forward", [&](auto tag) {
    using T = ElementOf<decltype(tag)>;
    kernels::maxpool_forward(p, x.data<T>(), y.data<T>(), workspace.data<int32_t>(), ctx_.s());
  });
  DP_CUDA_CHECK(cudaGetLastError());
}

void CudaBackend::maxpool_backward(const PoolGeometry& g, const Tensor& dy, const Tensor& workspace,
                                   Tensor& dx) {
  const kernels::PoolShape p = pool_shape(g);
  check_device(dy, "maxpool_backward", "output gradient");
  DP_CHECK(dy.shape() == (Shape{g.n, g.out_h(), g.out_w(), g.c}),
           "maxpool output gradient {} does not match geometry", to_string(dy.shape()));
  DP_CHECK(workspace.defined() && workspace.device() == Device::cuda &&
               workspace.dtype() == DType::i32 && workspace.numel() == dy.numel(),
           "maxpool workspace {}: the forward must run first", to_string(workspace.shape()));
  output(dx, {g.n, g.h, g.w, g.c}, dy.dtype());
  with_activation_type(dy, "maxpool_backward", [&](auto tag) {
    using T = ElementOf<decltype(tag)>;
    kernels::maxpool_backward(p, dy.data<T>(), workspace.data<int32_t>(), dx.data<T>(), ctx_.s());
  });
  DP_CUDA_CHECK(cudaGetLastError());
}

void CudaBackend::augment_batch(const AugmentSpec& spec, const Tensor& images,
                                const Tensor& crop_yx, const Tensor& flip, Tensor& out) {
  check_augment_operands(spec, images, crop_yx, flip);
  check_device(images, "augment_batch", "images");
  check_device(crop_yx, "augment_batch", "crop offsets");
  check_device(flip, "augment_batch", "flips");
  const int64_t n = images.dim(0), h = images.dim(1), w = images.dim(2), c = images.dim(3);
  output(out, images.shape());
  const float* mean = nullptr;
  const float* std = nullptr;
  if (!spec.mean.empty()) {
    if (spec.mean != augment_mean_ || spec.std != augment_std_ || !augment_stats_.defined()) {
      augment_mean_ = spec.mean;
      augment_std_ = spec.std;
      std::vector<float> stats(augment_mean_);
      stats.insert(stats.end(), augment_std_.begin(), augment_std_.end());
      output(augment_stats_, {2, c});
      copy_from_host(stats.data(), augment_stats_);  // staged before it returns
    }
    mean = augment_stats_.data<float>();
    std = mean + c;
  }
  kernels::augment_batch({n, h, w, c, spec.pad}, images.data<uint8_t>(), crop_yx.data<int32_t>(),
                         flip.data<uint8_t>(), mean, std, out.data<float>(), ctx_.s());
  DP_CUDA_CHECK(cudaGetLastError());
}

void CudaBackend::global_avgpool_forward(const Tensor& x, Tensor& y) {
  DP_CHECK(x.rank() == 4, "global_avgpool_forward expects NHWC, got {}", to_string(x.shape()));
  check_device(x, "global_avgpool_forward", "input");
  const int64_t n = x.dim(0), hw = x.dim(1) * x.dim(2), c = x.dim(3);
  output(y, {n, c}, x.dtype());
  with_activation_type(x, "global_avgpool_forward", [&](auto tag) {
    using T = ElementOf<decltype(tag)>;
    kernels::global_avgpool_forward(x.data<T>(), y.data<T>(), n, hw, c, ctx_.s());
  });
  DP_CUDA_CHECK(cudaGetLastError());
}

void CudaBackend::global_avgpool_backward(const Tensor& dy, Tensor& dx) {
  DP_CHECK(dx.rank() == 4 && dy.numel() == dx.dim(0) * dx.dim(3),
           "global_avgpool_backward: dx {} must be allocated NHWC for dy {}", to_string(dx.shape()),
           to_string(dy.shape()));
  check_device(dy, "global_avgpool_backward", "output gradient");
  const Shape shape = dx.shape();
  output(dx, shape, dy.dtype());
  with_activation_type(dy, "global_avgpool_backward", [&](auto tag) {
    using T = ElementOf<decltype(tag)>;
    kernels::global_avgpool_backward(dy.data<T>(), dx.data<T>(), shape[0], shape[1] * shape[2],
                                     shape[3], ctx_.s());
  });
  DP_CUDA_CHECK(cudaGetLastError());
}

// --- linear: cuBLAS is column-major, so a row-major {r, c} matrix is its {c, r} transpose ------

void CudaBackend::gemm(bool transpose_a, bool transpose_b, int m, int n, int k, DType ab_type,
                       const void* a, int lda, const void* b, int ldb, float beta, void* c,
                       DType c_type, int ldc) {
  const float alpha = 1.f;
  // f32 compute for both types: strict FP32 or TF32 as the handle's math mode says, and the
  // f32 accumulation of bf16 products that mixed precision relies on.
  DP_CUBLAS_CHECK(cublasGemmEx(ctx_.cublas.get(), transpose_a ? CUBLAS_OP_T : CUBLAS_OP_N,
                               transpose_b ? CUBLAS_OP_T : CUBLAS_OP_N, m, n, k, &alpha, a,
                               cublas_type(ab_type), lda, b, cublas_type(ab_type), ldb, &beta, c,
                               cublas_type(c_type), ldc, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
}

const void* CudaBackend::in_type(const Tensor& t, DType type, ScratchBuffer& scratch) {
  if (t.dtype() == type) return t.data<void>();
  DP_CHECK(t.dtype() == DType::f32 && type == DType::bf16,
           "an operand of element type {} where {} was expected", static_cast<int>(t.dtype()),
           static_cast<int>(type));
  auto* out = static_cast<kernels::bf16*>(scratch.get(ctx_.pool, t.numel() * dtype_size(type)));
  kernels::convert(f(t), out, t.numel(), ctx_.s());
  DP_CUDA_CHECK(cudaGetLastError());
  return out;
}

void CudaBackend::linear_forward(const Tensor& x, const Tensor& w, const Tensor& b, Tensor& y) {
  DP_CHECK(x.rank() == 2 && w.rank() == 2 && x.dim(1) == w.dim(1) && b.numel() == w.dim(0),
           "linear: x {} w {} b {}", to_string(x.shape()), to_string(w.shape()),
           to_string(b.shape()));
  check_device(x, "linear_forward", "input");
  check_device(w, "linear_forward", "weight");
  check_device(b, "linear_forward", "bias");
  const int n = static_cast<int>(x.dim(0)), in = static_cast<int>(x.dim(1)),
            out = static_cast<int>(w.dim(0));
  // The products in the input's type (bf16 under mixed precision: the f32 weights are
  // rounded for the call), the logits always f32 for the loss.
  const DType type = x.dtype();
  const void* weights = in_type(w, type, ctx_.weights);
  output(y, {x.dim(0), w.dim(0)});
  kernels::broadcast_rows(f(b), f(y), n, out, ctx_.s());
  DP_CUDA_CHECK(cudaGetLastError());
  // y^T (out x n) = W (out x in; column-major W^T) * x^T (in x n), plus the broadcast bias.
  gemm(true, false, out, n, in, type, weights, in, x.data<void>(), in, 1.f, f(y), DType::f32,
       out);
}

void CudaBackend::linear_backward(const Tensor& x, const Tensor& w, const Tensor& dy, Tensor& dx,
                                  Tensor& dw, Tensor& db) {
  DP_CHECK(x.rank() == 2 && w.rank() == 2 && dy.rank() == 2 && x.dim(1) == w.dim(1) &&
               dy.dim(0) == x.dim(0) && dy.dim(1) == w.dim(0),
           "linear backward: x {} w {} dy {}", to_string(x.shape()), to_string(w.shape()),
           to_string(dy.shape()));
  check_device(x, "linear_backward", "input");
  check_device(w, "linear_backward", "weight");
  check_device(dy, "linear_backward", "output gradient");
  DP_CHECK(dy.dtype() == DType::f32, "linear backward: the logits' gradient must be f32");
  const int n = static_cast<int>(x.dim(0)), in = static_cast<int>(x.dim(1)),
            out = static_cast<int>(w.dim(0));
  const DType type = x.dtype();
  const void* weights = in_type(w, type, ctx_.weights);
  const void* grad = in_type(dy, type, ctx_.converted);
  output(dx, x.shape(), type);
  output(dw, w.shape());
  output(db, {w.dim(0)});
  // dx^T (in x n) = W^T (in x out) * dy^T (out x n)
  gemm(false, false, in, n, out, type, weights, in, grad, out, 0.f, dx.data<void>(), type, in);
  // dW^T (in x out) = x^T (in x n) * dy (n x out), accumulated and stored in f32
  gemm(false, true, in, out, n, type, x.data<void>(), in, grad, out, 0.f, f(dw), DType::f32, in);
  kernels::column_sums(f(dy), f(db), n, out, ctx_.s());
  DP_CUDA_CHECK(cudaGetLastError());
}

// --- loss ----------------------------------------------------------------------------------------

float CudaBackend::softmax_cross_entropy(const Tensor& logits, const Tensor& labels,
                                         float label_smoothing, Tensor& dlogits,
                                         int64_t& correct) {
  queue_softmax_cross_entropy(logits, labels, label_smoothing, dlogits);
  return read_queued_loss(logits, labels, correct);
}

void CudaBackend::queue_softmax_cross_entropy(const Tensor& logits, const Tensor& labels,
                                              float label_smoothing, Tensor& dlogits) {
  DP_CHECK(logits.rank() == 2 && labels.dtype() == DType::i32 && labels.numel() == logits.dim(0),
           "softmax_cross_entropy: logits {} labels {}", to_string(logits.shape()),
           to_string(labels.shape()));
  check_device(logits, "softmax_cross_entropy", "logits");
  DP_CHECK(logits.dtype() == DType::f32, "softmax_cross_entropy: the logits must be f32");
  check_device(labels, "softmax_cross_entropy", "labels");
  const int64_t n = logits.dim(0), k = logits.dim(1);
  output(dlogits, logits.shape());
  output(loss_rows_, {3 * n}, DType::i32);
  auto* row_loss = loss_rows_.data<float>();
  auto* hit = loss_rows_.data<int32_t>() + n;
  auto* bad = loss_rows_.data<int32_t>() + 2 * n;
  kernels::softmax_cross_entropy(f(logits), labels.data<int32_t>(), n, k, label_smoothing,
                                 f(dlogits), row_loss, hit, bad, ctx_.s());
  DP_CUDA_CHECK(cudaGetLastError());
}

float CudaBackend::read_queued_loss(const Tensor& logits, const Tensor& labels,
                                    int64_t& correct) {
  const int64_t n = logits.dim(0), k = logits.dim(1);
  DP_CHECK(loss_rows_.defined() && loss_rows_.numel() >= 3 * n,
           "read_queued_loss: no loss of {} rows was queued", n);
  loss_host_.resize(3 * n * sizeof(int32_t));
  DP_CUDA_CHECK(cudaMemcpyAsync(loss_host_.data(), loss_rows_.data<void>(), loss_host_.size(),
                                cudaMemcpyDeviceToHost, ctx_.s()));
  DP_CUDA_CHECK(cudaStreamSynchronize(ctx_.s()));
  std::vector<float> loss(n);
  std::vector<int32_t> flags(2 * n);
  std::memcpy(loss.data(), loss_host_.data(), n * sizeof(float));
  std::memcpy(flags.data(), loss_host_.data() + n * sizeof(float), 2 * n * sizeof(int32_t));
  for (int64_t i = 0; i < n; ++i)
    if (flags[n + i]) {
      int32_t label = 0;
      DP_CUDA_CHECK(cudaMemcpy(&label, labels.data<int32_t>() + i, sizeof(label),
                               cudaMemcpyDeviceToHost));
      throw DataError(fmt::format("label {} of sample {} is outside [0, {})", label, i, k));
    }
  double total = 0;
  int64_t hits = 0;
  for (int64_t i = 0; i < n; ++i) {
    total += loss[i];
    hits += flags[i];
  }
  correct = hits;
  return static_cast<float>(total / static_cast<double>(n));
}

std::unique_ptr<CapturedWork> CudaBackend::capture(const std::function<void()>& work) {
  return capture_graph(ctx_.s(), ctx_.pool, work);
}

// --- optimizer -----------------------------------------------------------------------------------

void CudaBackend::sgd_step(const SgdHyper& h, Tensor& params, const Tensor& grads,
                           Tensor& momentum_buffer, const Tensor& decay_mask) {
  check_same_numel(params, grads, "sgd_step grads");
  check_device(params, "sgd_step", "parameters");
  check_device(grads, "sgd_step", "gradients");
  const bool use_momentum = h.momentum != 0.f;
  if (use_momentum) {
    check_same_numel(params, momentum_buffer, "sgd_step momentum buffer");
    check_device(momentum_buffer, "sgd_step", "momentum buffer");
  }
  const bool masked = decay_mask.defined();
  if (masked) {
    check_same_numel(params, decay_mask, "sgd_step decay mask");
    check_device(decay_mask, "sgd_step", "decay mask");
  }
  kernels::SgdArgs a{h.lr, h.momentum, h.dampening, h.weight_decay, h.nesterov};
  kernels::sgd_step(a, f(params), f(grads), use_momentum ? f(momentum_buffer) : nullptr,
                    masked ? f(decay_mask) : nullptr, params.numel(), ctx_.s());
  DP_CUDA_CHECK(cudaGetLastError());
}

double CudaBackend::sum_of_squares(const Tensor& t) {
  check_device(t, "sum_of_squares", "tensor");
  DP_CHECK(t.dtype() == DType::f32, "sum_of_squares: f32 tensors only");
  const int blocks = kernels::sum_of_squares_blocks(t.numel());
  output(norm_partials_, {2 * static_cast<int64_t>(blocks)}, DType::i32);  // doubles
  auto* partials = norm_partials_.data<double>();
  kernels::sum_of_squares(f(t), t.numel(), partials, blocks, ctx_.s());
  DP_CUDA_CHECK(cudaGetLastError());
  std::vector<double> host(blocks);
  DP_CUDA_CHECK(cudaMemcpyAsync(host.data(), partials, blocks * sizeof(double),
                                cudaMemcpyDeviceToHost, ctx_.s()));
  DP_CUDA_CHECK(cudaStreamSynchronize(ctx_.s()));
  return std::accumulate(host.begin(), host.end(), 0.0);
}

}  // namespace dp::cuda

namespace dp {

std::unique_ptr<Backend> make_cuda_backend(const CudaOptions& options) {
  return std::make_unique<cuda::CudaBackend>(options);
}

}  // namespace dp
