// The elementwise kernels (kernels.h): fills and conversions, ReLU and GELU with their
// gradients, residual sums, scaling, the per-channel bias, batch norm's fused-ReLU mask.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include "backend/cuda/element_access.cuh"
#include "backend/cuda/grid_stride.cuh"
#include "backend/cuda/kernels.h"

namespace dp::cuda::kernels {
namespace {

template <typename T>
__global__ void fill_kernel(T* p, int64_t n, T v) {
  DP_GRID_STRIDE(i, n) p[i] = v;
}

template <typename From, typename To>
__global__ void convert_kernel(const From* src, To* dst, int64_t n) {
  DP_GRID_STRIDE(i, n) dst[i] = store<To>(load(src[i]));
}

template <typename T>
__global__ void relu_forward_kernel(const T* x, T* y, int64_t n) {
  DP_GRID_STRIDE(i, n) y[i] = store<T>(load(x[i]) > 0.f ? load(x[i]) : 0.f);
}

template <typename T>
__global__ void relu_backward_kernel(const T* y, const T* dy, T* dx, int64_t n) {
  DP_GRID_STRIDE(i, n) dx[i] = load(y[i]) > 0.f ? dy[i] : store<T>(0.f);
}

template <typename T>
__global__ void add_relu_kernel(const T* a, const T* b, T* y, int64_t n) {
  DP_GRID_STRIDE(i, n) {
    float s = load(a[i]) + load(b[i]);
    y[i] = store<T>(s > 0.f ? s : 0.f);
  }
}

template <typename T>
__global__ void accumulate_kernel(const T* x, T* y, int64_t n) {
  DP_GRID_STRIDE(i, n) y[i] = store<T>(load(y[i]) + load(x[i]));
}

// One pass for a residual block's two branch gradients and its input's ReLU mask: the sum is
// rounded once, as accumulate then relu_backward would round it.
template <typename T>
__global__ void accumulate_relu_backward_kernel(const T* x, const T* relu_output, T* y, int64_t n) {
  DP_GRID_STRIDE(i, n) {
    y[i] = load(relu_output[i]) > 0.f ? store<T>(load(y[i]) + load(x[i])) : store<T>(0.f);
  }
}

// GELU, erf form: y = x * Phi(x); dy/dx = Phi(x) + x * phi(x). Arithmetic in float.
template <typename T>
__global__ void gelu_forward_kernel(const T* x, T* y, int64_t n) {
  DP_GRID_STRIDE(i, n) {
    const float v = load(x[i]);
    y[i] = store<T>(0.5f * v * (1.f + erff(v * 0.70710678118654752f)));
  }
}

template <typename T>
__global__ void gelu_backward_kernel(const T* x, const T* dy, T* dx, int64_t n) {
  DP_GRID_STRIDE(i, n) {
    const float v = load(x[i]);
    const float cdf = 0.5f * (1.f + erff(v * 0.70710678118654752f));
    const float pdf = 0.39894228040143268f * expf(-0.5f * v * v);
    dx[i] = store<T>(load(dy[i]) * (cdf + v * pdf));
  }
}

template <typename T>
__global__ void scale_kernel(const T* x, float alpha, T* y, int64_t n) {
  DP_GRID_STRIDE(i, n) y[i] = store<T>(alpha * load(x[i]));
}

template <typename T>
__global__ void channel_bias_forward_kernel(const float* b, T* y, int64_t rows, int64_t c) {
  DP_GRID_STRIDE(i, rows * c) y[i] = store<T>(load(y[i]) + b[i % c]);
}

}  // namespace

void fill_f32(float* p, int64_t n, float value, Stream s) {
  fill_kernel<<<blocks_for(n), kThreads, 0, s>>>(p, n, value);
}
void fill_i32(int32_t* p, int64_t n, int32_t value, Stream s) {
  fill_kernel<<<blocks_for(n), kThreads, 0, s>>>(p, n, value);
}
void fill_u8(uint8_t* p, int64_t n, uint8_t value, Stream s) {
  fill_kernel<<<blocks_for(n), kThreads, 0, s>>>(p, n, value);
}
void fill_bf16(bf16* p, int64_t n, float value, Stream s) {
  fill_kernel<<<blocks_for(n), kThreads, 0, s>>>(p, n, store<bf16>(value));
}
void convert(const float* src, bf16* dst, int64_t n, Stream s) {
  convert_kernel<<<blocks_for(n), kThreads, 0, s>>>(src, dst, n);
}
void convert(const bf16* src, float* dst, int64_t n, Stream s) {
  convert_kernel<<<blocks_for(n), kThreads, 0, s>>>(src, dst, n);
}

// The launchers of each op for one element type T (float, and bf16 under mixed precision).
#define DP_ELEMENTWISE_LAUNCHERS(T)                                                                \
  void relu_forward(const T* x, T* y, int64_t n, Stream s) {                                       \
    relu_forward_kernel<<<blocks_for(n), kThreads, 0, s>>>(x, y, n);                               \
  }                                                                                                \
  void relu_backward(const T* y, const T* dy, T* dx, int64_t n, Stream s) {                        \
    relu_backward_kernel<<<blocks_for(n), kThreads, 0, s>>>(y, dy, dx, n);                         \
  }                                                                                                \
  void add_relu_forward(const T* a, const T* b, T* y, int64_t n, Stream s) {                       \
    add_relu_kernel<<<blocks_for(n), kThreads, 0, s>>>(a, b, y, n);                                \
  }                                                                                                \
  void accumulate(const T* x, T* y, int64_t n, Stream s) {                                         \
    accumulate_kernel<<<blocks_for(n), kThreads, 0, s>>>(x, y, n);                                 \
  }                                                                                                \
  void accumulate_relu_backward(const T* x, const T* relu_output, T* y, int64_t n, Stream s) {     \
    accumulate_relu_backward_kernel<<<blocks_for(n), kThreads, 0, s>>>(x, relu_output, y, n);      \
  }                                                                                                \
  void gelu_forward(const T* x, T* y, int64_t n, Stream s) {                                       \
    gelu_forward_kernel<<<blocks_for(n), kThreads, 0, s>>>(x, y, n);                               \
  }                                                                                                \
  void gelu_backward(const T* x, const T* dy, T* dx, int64_t n, Stream s) {                        \
    gelu_backward_kernel<<<blocks_for(n), kThreads, 0, s>>>(x, dy, dx, n);                         \
  }                                                                                                \
  void scale(const T* x, float alpha, T* y, int64_t n, Stream s) {                                 \
    scale_kernel<<<blocks_for(n), kThreads, 0, s>>>(x, alpha, y, n);                               \
  }                                                                                                \
  void channel_bias_forward(const float* b, T* y, int64_t rows, int64_t c, Stream s) {             \
    channel_bias_forward_kernel<<<blocks_for(rows* c), kThreads, 0, s>>>(b, y, rows, c);           \
  }

DP_ELEMENTWISE_LAUNCHERS(float)
DP_ELEMENTWISE_LAUNCHERS(bf16)
#undef DP_ELEMENTWISE_LAUNCHERS

}  // namespace dp::cuda::kernels
