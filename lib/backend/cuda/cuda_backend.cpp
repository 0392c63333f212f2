// CudaBackend's core: the context, memory and copies, element-type conversion of operands,
// graph capture, and the factory. The ops live in one file per role (cuda_backend_*.cpp);
// convolution itself in cudnn_conv.cpp.
#include "backend/cuda/cuda_backend.h"

#include <cstdint>

#include "backend/cuda/checked_launch.h"
#include "backend/cuda/cuda_graph.h"
#include "backend/cuda/cuda_operands.h"
#include "backend/cuda/pinned_uploader.h"
#include "backend/cuda/sync_bn_kernels.h"

namespace dp::cuda {

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
  DP_CUBLAS_CHECK(cuda::cublas().create(&b));
  cublas = CublasHandle(b);
  DP_CUBLAS_CHECK(cuda::cublas().set_stream(b, s));
  DP_CUBLAS_CHECK(cuda::cublas().set_math_mode(
      b, o.allow_tf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH));
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
  checked_launch([&] {
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
  });
}

void CudaBackend::synchronize() { DP_CUDA_CHECK(cudaStreamSynchronize(ctx_.s())); }

// --- element types -----------------------------------------------------------------------------

Tensor CudaBackend::as_activation(const Tensor& x) {
  const DType type = activation_dtype();
  if (x.dtype() == type) return x;
  void* converted = const_cast<void*>(in_type(x, type, ctx_.converted));
  return Tensor::view(converted, x.shape(), type, Device::cuda);
}

const void* CudaBackend::in_type(const Tensor& t, DType type, ScratchBuffer& scratch) {
  if (t.dtype() == type) return t.data<void>();
  DP_CHECK(t.dtype() == DType::f32 && type == DType::bf16,
           "an operand of element type {} where {} was expected", static_cast<int>(t.dtype()),
           static_cast<int>(type));
  auto* out = static_cast<kernels::bf16*>(scratch.get(ctx_.pool, t.numel() * dtype_size(type)));
  checked_launch([&] { kernels::convert(f(t), out, t.numel(), ctx_.s()); });
  return out;
}

float* CudaBackend::channel_partials(int64_t rows, int64_t c, int terms) {
  const int64_t chunks = kernels::channel_sum_chunks(rows);
  return static_cast<float*>(
      ctx_.workspace.get(ctx_.pool, static_cast<size_t>(chunks * terms * c) * sizeof(float)));
}

// --- graph capture -----------------------------------------------------------------------------

std::unique_ptr<CapturedWork> CudaBackend::capture(const std::function<void()>& work) {
  return capture_graph(ctx_.s(), ctx_.pool, work);
}

}  // namespace dp::cuda

namespace dp {

std::unique_ptr<Backend> make_cuda_backend(const CudaOptions& options) {
  return std::make_unique<cuda::CudaBackend>(options);
}

}  // namespace dp
