// CudaBackend: memory and copies, batch norm on cuDNN, the linear layer on cuBLAS, and the
// launches of the backend's own kernels. Convolution lives in cudnn_conv.cpp.
#include "backend/cuda/cuda_backend.h"

#include <cstring>
#include <numeric>

#include "backend/cuda/kernels.h"

namespace dp::cuda {
namespace {

void check_device(const Tensor& t, const char* op, const char* what) {
  DP_CHECK(t.defined() && t.device() == Device::cuda, "{}: {} must be a CUDA tensor", op, what);
}

void check_same_numel(const Tensor& a, const Tensor& b, const char* op) {
  DP_CHECK(a.numel() == b.numel(), "{}: {} vs {}", op, to_string(a.shape()), to_string(b.shape()));
}

const float* f(const Tensor& t) { return t.data<float>(); }
float* f(Tensor& t) { return t.data<float>(); }

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
  return fmt::format("cuda (GPU {}: {}, cuDNN {}, {}{})", ctx_.options.device, gpu,
                     cudnnGetVersion(), ctx_.options.allow_tf32 ? "TF32" : "FP32",
                     ctx_.options.deterministic ? ", deterministic" : "");
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
  if (t.defined() && t.device() == Device::cuda && need <= t.bytes())
    t.ensure(shape, dtype);  // a view: keeps its memory, takes the new shape
  else
    t = allocate(shape, dtype);
  return t;
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
  output(y, {g.n, g.out_h(), g.out_w(), g.c_out});
  conv_.forward(g, f(x), f(w), f(y));
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
  if (dx) {
    output(*dx, x.shape());
    conv_.backward_data(g, f(w), f(dy), f(*dx));
  }
  output(dw, w.shape());
  conv_.backward_filter(g, f(x), f(dy), f(dw));
}

// --- batch norm ----------------------------------------------------------------------------------

CudaBackend::BnDescs& CudaBackend::bn_descs(const BatchNormGeometry& g) {
  auto key = std::make_tuple(g.n, g.h, g.w, g.c);
  auto it = bn_cache_.find(key);
  if (it != bn_cache_.end()) return it->second;
  BnDescs d{nhwc_desc(g.n, g.c, g.h, g.w), make_tensor_desc()};
  DP_CUDNN_CHECK(cudnnDeriveBNTensorDescriptor(d.stats.get(), d.data.get(), CUDNN_BATCHNORM_SPATIAL));
  return bn_cache_.emplace(key, std::move(d)).first->second;
}

static void check_bn(const BatchNormGeometry& g, const Tensor& x,
                     std::initializer_list<const Tensor*> per_channel) {
  check_device(x, "batchnorm", "input");
  DP_CHECK(x.shape() == (Shape{g.n, g.h, g.w, g.c}), "batchnorm input {} does not match geometry",
           to_string(x.shape()));
  for (const Tensor* t : per_channel) {
    check_device(*t, "batchnorm", "per-channel tensor");
    DP_CHECK(t->numel() == g.c, "batchnorm per-channel tensor {} is not ({})",
             to_string(t->shape()), g.c);
  }
}

void CudaBackend::batchnorm_forward_train(const BatchNormGeometry& g, const Tensor& x,
                                          const Tensor& gamma, const Tensor& beta,
                                          Tensor& running_mean, Tensor& running_var, Tensor& y,
                                          Tensor& saved_mean, Tensor& saved_var,
                                          Tensor& /*workspace*/) {
  check_bn(g, x, {&gamma, &beta, &running_mean, &running_var});
  DP_CHECK(g.n * g.h * g.w > 1, "batchnorm training needs more than one value per channel");
  output(y, x.shape());
  output(saved_mean, {g.c});
  output(saved_var, {g.c});  // holds 1/sqrt(var + eps): what cuDNN's backward takes
  BnDescs& d = bn_descs(g);
  const float one = 1.f, zero = 0.f;
  // cuDNN updates the running variance with the unbiased batch variance, as PyTorch does
  // (running = (1 - factor) * running + factor * batch).
  DP_CUDNN_CHECK(cudnnBatchNormalizationForwardTraining(
      ctx_.cudnn.get(), CUDNN_BATCHNORM_SPATIAL, &one, &zero, d.data.get(), f(x), d.data.get(),
      f(y), d.stats.get(), f(gamma), f(beta), static_cast<double>(g.momentum), f(running_mean),
      f(running_var), static_cast<double>(g.eps), f(saved_mean), f(saved_var)));
  if (g.fuse_relu) kernels::relu_forward(f(y), f(y), y.numel(), ctx_.s());
  DP_CUDA_CHECK(cudaGetLastError());
}

void CudaBackend::batchnorm_forward_inference(const BatchNormGeometry& g, const Tensor& x,
                                              const Tensor& gamma, const Tensor& beta,
                                              const Tensor& running_mean,
                                              const Tensor& running_var, Tensor& y) {
  check_bn(g, x, {&gamma, &beta, &running_mean, &running_var});
  output(y, x.shape());
  BnDescs& d = bn_descs(g);
  const float one = 1.f, zero = 0.f;
  DP_CUDNN_CHECK(cudnnBatchNormalizationForwardInference(
      ctx_.cudnn.get(), CUDNN_BATCHNORM_SPATIAL, &one, &zero, d.data.get(), f(x), d.data.get(),
      f(y), d.stats.get(), f(gamma), f(beta), f(running_mean), f(running_var),
      static_cast<double>(g.eps)));
  if (g.fuse_relu) kernels::relu_forward(f(y), f(y), y.numel(), ctx_.s());
  DP_CUDA_CHECK(cudaGetLastError());
}

void CudaBackend::batchnorm_backward(const BatchNormGeometry& g, const Tensor& x, const Tensor& dy,
                                     const Tensor& gamma, const Tensor& beta,
                                     const Tensor& saved_mean, const Tensor& saved_var,
                                     const Tensor& /*workspace*/, Tensor& dx, Tensor& dgamma,
                                     Tensor& dbeta) {
  check_bn(g, x, {&gamma, &beta, &saved_mean, &saved_var});
  check_device(dy, "batchnorm_backward", "output gradient");
  DP_CHECK(dy.shape() == x.shape(), "batchnorm output gradient {} does not match input {}",
           to_string(dy.shape()), to_string(x.shape()));
  output(dx, x.shape());
  output(dgamma, {g.c});
  output(dbeta, {g.c});
  const float* grad_in = f(dy);
  if (g.fuse_relu) {
    // The ReLU's mask, recomputed from the saved statistics instead of stored in forward.
    auto* masked = static_cast<float*>(ctx_.activation.get(ctx_.pool, x.bytes()));
    kernels::bn_relu_mask(f(x), f(dy), f(gamma), f(beta), f(saved_mean), f(saved_var), masked,
                          x.numel(), g.c, ctx_.s());
    grad_in = masked;
  }
  BnDescs& d = bn_descs(g);
  const float one = 1.f, zero = 0.f;
  DP_CUDNN_CHECK(cudnnBatchNormalizationBackward(
      ctx_.cudnn.get(), CUDNN_BATCHNORM_SPATIAL, &one, &zero, &one, &zero, d.data.get(), f(x),
      d.data.get(), grad_in, d.data.get(), f(dx), d.stats.get(), f(gamma), f(dgamma), f(dbeta),
      static_cast<double>(g.eps), f(saved_mean), f(saved_var)));
  DP_CUDA_CHECK(cudaGetLastError());
}

// --- elementwise ---------------------------------------------------------------------------------

void CudaBackend::relu_forward(const Tensor& x, Tensor& y) {
  check_device(x, "relu_forward", "input");
  output(y, x.shape());
  kernels::relu_forward(f(x), f(y), x.numel(), ctx_.s());
  DP_CUDA_CHECK(cudaGetLastError());
}

void CudaBackend::relu_backward(const Tensor& y, const Tensor& dy, Tensor& dx) {
  check_same_numel(y, dy, "relu_backward");
  check_device(y, "relu_backward", "output");
  check_device(dy, "relu_backward", "output gradient");
  output(dx, dy.shape());
  kernels::relu_backward(f(y), f(dy), f(dx), y.numel(), ctx_.s());
  DP_CUDA_CHECK(cudaGetLastError());
}

void CudaBackend::add_relu_forward(const Tensor& a, const Tensor& b, Tensor& y) {
  check_same_numel(a, b, "add_relu_forward");
  check_device(a, "add_relu_forward", "first input");
  check_device(b, "add_relu_forward", "second input");
  output(y, a.shape());
  kernels::add_relu_forward(f(a), f(b), f(y), a.numel(), ctx_.s());
  DP_CUDA_CHECK(cudaGetLastError());
}

void CudaBackend::add_relu_backward(const Tensor& y, const Tensor& dy, Tensor& dx) {
  relu_backward(y, dy, dx);  // the same mask reaches both branches
}

void CudaBackend::accumulate(const Tensor& x, Tensor& y) {
  check_same_numel(x, y, "accumulate");
  check_device(x, "accumulate", "input");
  check_device(y, "accumulate", "output");
  kernels::accumulate(f(x), f(y), x.numel(), ctx_.s());
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
  output(y, {g.n, g.out_h(), g.out_w(), g.c});
  output(workspace, y.shape(), DType::i32);  // argmax per output
  kernels::maxpool_forward(p, f(x), f(y), workspace.data<int32_t>(), ctx_.s());
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
  output(dx, {g.n, g.h, g.w, g.c});
  kernels::maxpool_backward(p, f(dy), workspace.data<int32_t>(), f(dx), ctx_.s());
  DP_CUDA_CHECK(cudaGetLastError());
}

void CudaBackend::global_avgpool_forward(const Tensor& x, Tensor& y) {
  DP_CHECK(x.rank() == 4, "global_avgpool_forward expects NHWC, got {}", to_string(x.shape()));
  check_device(x, "global_avgpool_forward", "input");
  const int64_t n = x.dim(0), hw = x.dim(1) * x.dim(2), c = x.dim(3);
  output(y, {n, c});
  kernels::global_avgpool_forward(f(x), f(y), n, hw, c, ctx_.s());
  DP_CUDA_CHECK(cudaGetLastError());
}

void CudaBackend::global_avgpool_backward(const Tensor& dy, Tensor& dx) {
  DP_CHECK(dx.rank() == 4 && dy.numel() == dx.dim(0) * dx.dim(3),
           "global_avgpool_backward: dx {} must be allocated NHWC for dy {}", to_string(dx.shape()),
           to_string(dy.shape()));
  check_device(dy, "global_avgpool_backward", "output gradient");
  const Shape shape = dx.shape();
  output(dx, shape);
  kernels::global_avgpool_backward(f(dy), f(dx), shape[0], shape[1] * shape[2], shape[3],
                                   ctx_.s());
  DP_CUDA_CHECK(cudaGetLastError());
}

// --- linear: cuBLAS is column-major, so a row-major {r, c} matrix is its {c, r} transpose ------

void CudaBackend::linear_forward(const Tensor& x, const Tensor& w, const Tensor& b, Tensor& y) {
  DP_CHECK(x.rank() == 2 && w.rank() == 2 && x.dim(1) == w.dim(1) && b.numel() == w.dim(0),
           "linear: x {} w {} b {}", to_string(x.shape()), to_string(w.shape()),
           to_string(b.shape()));
  check_device(x, "linear_forward", "input");
  check_device(w, "linear_forward", "weight");
  check_device(b, "linear_forward", "bias");
  const int n = static_cast<int>(x.dim(0)), in = static_cast<int>(x.dim(1)),
            out = static_cast<int>(w.dim(0));
  output(y, {x.dim(0), w.dim(0)});
  kernels::broadcast_rows(f(b), f(y), n, out, ctx_.s());
  DP_CUDA_CHECK(cudaGetLastError());
  // y^T (out x n) = W (out x in; column-major W^T) * x^T (in x n), plus the broadcast bias.
  const float one = 1.f;
  DP_CUBLAS_CHECK(cublasSgemm(ctx_.cublas.get(), CUBLAS_OP_T, CUBLAS_OP_N, out, n, in, &one, f(w),
                              in, f(x), in, &one, f(y), out));
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
  const int n = static_cast<int>(x.dim(0)), in = static_cast<int>(x.dim(1)),
            out = static_cast<int>(w.dim(0));
  output(dx, x.shape());
  output(dw, w.shape());
  output(db, {w.dim(0)});
  const float one = 1.f, zero = 0.f;
  // dx^T (in x n) = W^T (in x out) * dy^T (out x n)
  DP_CUBLAS_CHECK(cublasSgemm(ctx_.cublas.get(), CUBLAS_OP_N, CUBLAS_OP_N, in, n, out, &one, f(w),
                              in, f(dy), out, &zero, f(dx), in));
  // dW^T (in x out) = x^T (in x n) * dy (n x out)
  DP_CUBLAS_CHECK(cublasSgemm(ctx_.cublas.get(), CUBLAS_OP_N, CUBLAS_OP_T, in, out, n, &one, f(x),
                              in, f(dy), out, &zero, f(dw), in));
  kernels::column_sums(f(dy), f(db), n, out, ctx_.s());
  DP_CUDA_CHECK(cudaGetLastError());
}

// --- loss ----------------------------------------------------------------------------------------

float CudaBackend::softmax_cross_entropy(const Tensor& logits, const Tensor& labels,
                                         float label_smoothing, Tensor& dlogits,
                                         int64_t& correct) {
  DP_CHECK(logits.rank() == 2 && labels.dtype() == DType::i32 && labels.numel() == logits.dim(0),
           "softmax_cross_entropy: logits {} labels {}", to_string(logits.shape()),
           to_string(labels.shape()));
  check_device(logits, "softmax_cross_entropy", "logits");
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
  loss_host_.resize(3 * n * sizeof(int32_t));
  copy_to_host(loss_rows_, loss_host_.data());
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
