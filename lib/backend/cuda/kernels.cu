// The CUDA backend's own kernels. Grid-stride loops over flat buffers, one warp per row for
// the loss, fixed-order reductions everywhere, so every kernel here is deterministic.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cfloat>

#include "backend/cuda/element_access.cuh"
#include "backend/cuda/kernels.h"
#include "core/augment_pixel.h"

namespace dp::cuda::kernels {
namespace {

constexpr int kThreads = 256;

int blocks_for(int64_t n) {
  // Grid-stride loops: enough blocks to fill an H100 many times over, never more than needed.
  int64_t b = (n + kThreads - 1) / kThreads;
  if (b > 65535) b = 65535;
  return static_cast<int>(b < 1 ? 1 : b);
}

#define DP_GRID_STRIDE(i, n)                                                              \
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < (n);               \
       i += int64_t(blockDim.x) * gridDim.x)

template <typename T>
__global__ void fill_kernel(T* p, int64_t n, T v) {
  DP_GRID_STRIDE(i, n) p[i] = v;
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

// Block k sums channel k: each thread a strided share of the rows, then a tree in shared
// memory. The order depends only on the shape, so the sum is the same on every run.
template <typename T>
__global__ void channel_bias_backward_kernel(const T* dy, float* db, int64_t rows, int64_t c) {
  __shared__ float partial[kThreads];
  const int64_t k = blockIdx.x;
  float sum = 0.f;
  for (int64_t r = threadIdx.x; r < rows; r += kThreads) sum += load(dy[r * c + k]);
  partial[threadIdx.x] = sum;
  __syncthreads();
  for (int half = kThreads / 2; half > 0; half /= 2) {
    if (threadIdx.x < half) partial[threadIdx.x] += partial[threadIdx.x + half];
    __syncthreads();
  }
  if (threadIdx.x == 0) db[k] = partial[0];
}

// One pass for a residual block's two branch gradients and its input's ReLU mask: the sum is
// rounded once, as accumulate then relu_backward would round it.
template <typename T>
__global__ void accumulate_relu_backward_kernel(const T* x, const T* relu_output, T* y,
                                                int64_t n) {
  DP_GRID_STRIDE(i, n) {
    y[i] = load(relu_output[i]) > 0.f ? store<T>(load(y[i]) + load(x[i])) : store<T>(0.f);
  }
}

template <typename T>
__global__ void bn_relu_mask_kernel(const T* x, const T* dy, const float* gamma,
                                    const float* beta, const float* mean, const float* inv_std,
                                    T* out, int64_t n, int64_t c) {
  DP_GRID_STRIDE(i, n) {
    int64_t k = i % c;
    float v = gamma[k] * (load(x[i]) - mean[k]) * inv_std[k] + beta[k];
    out[i] = v > 0.f ? dy[i] : store<T>(0.f);
  }
}

template <typename T>
__global__ void avgpool_forward_kernel(const T* x, T* y, int64_t n, int64_t hw, int64_t c,
                                       float scale) {
  DP_GRID_STRIDE(i, n * c) {
    int64_t b = i / c, k = i % c;
    const T* p = x + b * hw * c + k;
    float s = 0.f;
    for (int64_t q = 0; q < hw; ++q) s += load(p[q * c]);
    y[i] = store<T>(s * scale);
  }
}

template <typename T>
__global__ void avgpool_backward_kernel(const T* dy, T* dx, int64_t n, int64_t hw, int64_t c,
                                        float scale) {
  DP_GRID_STRIDE(i, n * hw * c) {
    int64_t k = i % c, b = i / (hw * c);
    dx[i] = store<T>(load(dy[b * c + k]) * scale);
  }
}

// Copies only (no arithmetic), so bf16 values pass through unchanged.
template <typename T>
__global__ void subsample_pad_forward_kernel(SubsamplePadShape g, const T* x, T* y) {
  DP_GRID_STRIDE(i, g.n * g.out_h * g.out_w * g.c_out) {
    const int64_t k = i % g.c_out, pixel = i / g.c_out;
    const int64_t ox = pixel % g.out_w, oy = (pixel / g.out_w) % g.out_h;
    const int64_t b = pixel / (g.out_w * g.out_h);
    y[i] = k < g.c_in ? x[((b * g.h + oy * g.stride) * g.w + ox * g.stride) * g.c_in + k]
                      : store<T>(0.f);
  }
}

template <typename T>
__global__ void subsample_pad_backward_kernel(SubsamplePadShape g, const T* dy, T* dx) {
  DP_GRID_STRIDE(i, g.n * g.h * g.w * g.c_in) {
    const int64_t k = i % g.c_in, pixel = i / g.c_in;
    const int64_t x = pixel % g.w, y = (pixel / g.w) % g.h, b = pixel / (g.w * g.h);
    const bool read = y % g.stride == 0 && x % g.stride == 0;
    dx[i] = read ? dy[((b * g.out_h + y / g.stride) * g.out_w + x / g.stride) * g.c_out + k]
                 : store<T>(0.f);
  }
}

template <typename From, typename To>
__global__ void convert_kernel(const From* src, To* dst, int64_t n) {
  DP_GRID_STRIDE(i, n) dst[i] = store<To>(load(src[i]));
}

template <typename T>
__global__ void maxpool_forward_kernel(PoolShape g, const T* x, T* y, int32_t* argmax) {
  const int64_t total = g.n * g.out_h * g.out_w * g.c;
  DP_GRID_STRIDE(i, total) {
    int64_t k = i % g.c, r = i / g.c;
    int64_t ox = r % g.out_w;
    r /= g.out_w;
    int64_t oy = r % g.out_h, b = r / g.out_h;
    float best = -FLT_MAX;
    int32_t where = -1;
    for (int64_t ky = 0; ky < g.kernel; ++ky) {
      int64_t iy = oy * g.stride - g.pad + ky;
      if (iy < 0 || iy >= g.h) continue;
      for (int64_t kx = 0; kx < g.kernel; ++kx) {
        int64_t ix = ox * g.stride - g.pad + kx;
        if (ix < 0 || ix >= g.w) continue;
        float v = load(x[((b * g.h + iy) * g.w + ix) * g.c + k]);
        // The first maximum wins, a NaN over every number (the backend's rule); padded
        // positions never take part.
        if (where < 0 || v > best || isnan(v)) {
          best = v;
          where = static_cast<int32_t>(iy * g.w + ix);
        }
      }
    }
    y[i] = store<T>(where < 0 ? 0.f : best);
    argmax[i] = where;
  }
}

template <typename T>
__global__ void maxpool_backward_kernel(PoolShape g, const T* dy, const int32_t* argmax, T* dx) {
  const int64_t total = g.n * g.h * g.w * g.c;
  DP_GRID_STRIDE(i, total) {
    int64_t k = i % g.c, r = i / g.c;
    int64_t ix = r % g.w;
    r /= g.w;
    int64_t iy = r % g.h, b = r / g.h;
    const int32_t self = static_cast<int32_t>(iy * g.w + ix);
    // Outputs whose window covers (iy, ix): oy*stride - pad <= iy < oy*stride - pad + kernel.
    int64_t oy_lo = iy + g.pad - g.kernel + 1, ox_lo = ix + g.pad - g.kernel + 1;
    oy_lo = oy_lo <= 0 ? 0 : (oy_lo + g.stride - 1) / g.stride;
    ox_lo = ox_lo <= 0 ? 0 : (ox_lo + g.stride - 1) / g.stride;
    int64_t oy_hi = (iy + g.pad) / g.stride, ox_hi = (ix + g.pad) / g.stride;
    if (oy_hi >= g.out_h) oy_hi = g.out_h - 1;
    if (ox_hi >= g.out_w) ox_hi = g.out_w - 1;
    float s = 0.f;
    for (int64_t oy = oy_lo; oy <= oy_hi; ++oy)
      for (int64_t ox = ox_lo; ox <= ox_hi; ++ox) {
        int64_t o = ((b * g.out_h + oy) * g.out_w + ox) * g.c + k;
        if (argmax[o] == self) s += load(dy[o]);
      }
    dx[i] = store<T>(s);
  }
}

__global__ void broadcast_rows_kernel(const float* b, float* y, int64_t rows, int64_t cols) {
  DP_GRID_STRIDE(i, rows * cols) y[i] = b[i % cols];
}

__global__ void column_sums_kernel(const float* dy, float* db, int64_t rows, int64_t cols) {
  DP_GRID_STRIDE(j, cols) {
    float s = 0.f;
    for (int64_t r = 0; r < rows; ++r) s += dy[r * cols + j];
    db[j] = s;
  }
}

template <typename From, typename To>
__global__ void oihw_to_ohwi_kernel(const From* src, To* dst, int64_t o, int64_t in,
                                    int64_t hw) {
  DP_GRID_STRIDE(t, o * in * hw) {
    // t indexes dst {O, HW, I}
    int64_t i = t % in, r = t / in;
    int64_t p = r % hw, q = r / hw;
    dst[t] = store<To>(load(src[(q * in + i) * hw + p]));
  }
}

template <typename From, typename To>
__global__ void ohwi_to_oihw_kernel(const From* src, To* dst, int64_t o, int64_t in,
                                    int64_t hw) {
  DP_GRID_STRIDE(t, o * in * hw) {
    // t indexes dst {O, I, HW}
    int64_t p = t % hw, r = t / hw;
    int64_t i = r % in, q = r / in;
    dst[t] = store<To>(load(src[(q * hw + p) * in + i]));
  }
}

__device__ float warp_sum(float v) {
  for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
  return v;
}

__device__ void warp_argmax(float& v, int64_t& j) {
  for (int off = 16; off > 0; off >>= 1) {
    float ov = __shfl_xor_sync(0xffffffffu, v, off);
    int64_t oj = __shfl_xor_sync(0xffffffffu, j, off);
    // Ties go to the lower index, as the CPU backend's first-maximum scan.
    if (ov > v || (ov == v && oj < j)) {
      v = ov;
      j = oj;
    }
  }
}

// One warp per row: max and argmax, then sum of exp and of z, then the gradient.
__global__ void softmax_xent_kernel(const float* logits, const int32_t* labels, int64_t n,
                                    int64_t k, float smoothing, float* dlogits, float* row_loss,
                                    int32_t* hit, int32_t* bad) {
  const int lane = threadIdx.x % 32;
  const int64_t row = (blockIdx.x * int64_t(blockDim.x) + threadIdx.x) / 32;
  if (row >= n) return;  // whole warps leave together: n rows map to whole warps
  const float* z = logits + row * k;
  float* dz = dlogits + row * k;
  const int32_t y = labels[row];
  const bool valid = y >= 0 && y < k;
  float best = -FLT_MAX;
  int64_t arg = k;
  for (int64_t j = lane; j < k; j += 32)
    if (arg == k || z[j] > best) {  // within a lane, the first maximum wins
      best = z[j];
      arg = j;
    }
  warp_argmax(best, arg);
  float sum_exp = 0.f, sum_z = 0.f;
  for (int64_t j = lane; j < k; j += 32) {
    sum_exp += expf(z[j] - best);
    sum_z += z[j];
  }
  sum_exp = warp_sum(sum_exp);
  sum_z = warp_sum(sum_z);
  const float log_sum = best + logf(sum_exp);
  const float inv_n = 1.f / static_cast<float>(n);
  const float off_target = smoothing / static_cast<float>(k);
  for (int64_t j = lane; j < k; j += 32) {
    float p = expf(z[j] - log_sum);
    float target = off_target + (j == y ? 1.f - smoothing : 0.f);
    dz[j] = (p - target) * inv_n;
  }
  if (lane == 0) {
    bad[row] = valid ? 0 : 1;
    hit[row] = valid && arg == y ? 1 : 0;
    float nll = valid ? log_sum - z[y] : 0.f;
    float smooth = log_sum - sum_z / static_cast<float>(k);
    row_loss[row] = (1.f - smoothing) * nll + smoothing * smooth;
  }
}

__global__ void sgd_kernel(SgdHyper h, float* w, const float* g, float* buf, const float* mask,
                           int64_t n) {
  DP_GRID_STRIDE(i, n) {
    float no_buffer = 0;
    w[i] =
        sgd_update(h, w[i], g[i], mask ? mask[i] : 1.f, buf != nullptr, buf ? buf[i] : no_buffer);
  }
}

__global__ void sum_of_squares_kernel(const float* x, int64_t n, double* partials) {
  __shared__ double shared[kThreads];
  double s = 0;
  DP_GRID_STRIDE(i, n) s += static_cast<double>(x[i]) * x[i];
  shared[threadIdx.x] = s;
  __syncthreads();
  for (int stride = kThreads / 2; stride > 0; stride >>= 1) {
    if (threadIdx.x < stride) shared[threadIdx.x] += shared[threadIdx.x + stride];
    __syncthreads();
  }
  if (threadIdx.x == 0) partials[blockIdx.x] = shared[0];
}

__global__ void augment_kernel(AugmentShape g, const uint8_t* images, const int32_t* crop_yx,
                               const uint8_t* flip, const float* mean, const float* std,
                               float* out) {
  DP_GRID_STRIDE(i, g.n * g.h * g.w * g.c) {
    int64_t k = i % g.c, r = i / g.c;
    int64_t x = r % g.w;
    r /= g.w;
    int64_t y = r % g.h, b = r / g.h;
    const int64_t src_y = augment::source_index(y, crop_yx[2 * b], g.pad, g.h, g.reflect);
    const int64_t cropped_x = flip[b] ? g.w - 1 - x : x;
    const int64_t src_x =
        augment::source_index(cropped_x, crop_yx[2 * b + 1], g.pad, g.w, g.reflect);
    int v = 0;  // the padding is a zero pixel
    if (src_y >= 0 && src_y < g.h && src_x >= 0 && src_x < g.w)
      v = images[((b * g.h + src_y) * g.w + src_x) * g.c + k];
    out[i] = augment::pixel_value(v, mean ? mean[k] : 0.f, mean ? std[k] : 1.f, mean != nullptr);
  }
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
// The launchers of each activation op, for one element type T (float, and bf16 below).
#define DP_ACTIVATION_LAUNCHERS(T)                                                              \
  void relu_forward(const T* x, T* y, int64_t n, Stream s) {                                    \
    relu_forward_kernel<<<blocks_for(n), kThreads, 0, s>>>(x, y, n);                            \
  }                                                                                             \
  void relu_backward(const T* y, const T* dy, T* dx, int64_t n, Stream s) {                     \
    relu_backward_kernel<<<blocks_for(n), kThreads, 0, s>>>(y, dy, dx, n);                      \
  }                                                                                             \
  void add_relu_forward(const T* a, const T* b, T* y, int64_t n, Stream s) {                    \
    add_relu_kernel<<<blocks_for(n), kThreads, 0, s>>>(a, b, y, n);                             \
  }                                                                                             \
  void accumulate(const T* x, T* y, int64_t n, Stream s) {                                      \
    accumulate_kernel<<<blocks_for(n), kThreads, 0, s>>>(x, y, n);                              \
  }                                                                                             \
  void accumulate_relu_backward(const T* x, const T* relu_output, T* y, int64_t n, Stream s) {  \
    accumulate_relu_backward_kernel<<<blocks_for(n), kThreads, 0, s>>>(x, relu_output, y, n);   \
  }                                                                                             \
  void bn_relu_mask(const T* x, const T* dy, const float* gamma, const float* beta,             \
                    const float* mean, const float* inv_std, T* out, int64_t n, int64_t c,      \
                    Stream s) {                                                                 \
    bn_relu_mask_kernel<<<blocks_for(n), kThreads, 0, s>>>(x, dy, gamma, beta, mean, inv_std,   \
                                                           out, n, c);                          \
  }                                                                                             \
  void global_avgpool_forward(const T* x, T* y, int64_t n, int64_t hw, int64_t c, Stream s) {   \
    avgpool_forward_kernel<<<blocks_for(n * c), kThreads, 0, s>>>(x, y, n, hw, c,               \
                                                                  1.f / static_cast<float>(hw)); \
  }                                                                                             \
  void global_avgpool_backward(const T* dy, T* dx, int64_t n, int64_t hw, int64_t c,            \
                               Stream s) {                                                      \
    avgpool_backward_kernel<<<blocks_for(n * hw * c), kThreads, 0, s>>>(                        \
        dy, dx, n, hw, c, 1.f / static_cast<float>(hw));                                        \
  }                                                                                             \
  void subsample_pad_forward(const SubsamplePadShape& g, const T* x, T* y, Stream s) {          \
    subsample_pad_forward_kernel<<<blocks_for(g.n * g.out_h * g.out_w * g.c_out), kThreads, 0,   \
                                   s>>>(g, x, y);                                               \
  }                                                                                             \
  void subsample_pad_backward(const SubsamplePadShape& g, const T* dy, T* dx, Stream s) {       \
    subsample_pad_backward_kernel<<<blocks_for(g.n * g.h * g.w * g.c_in), kThreads, 0, s>>>(    \
        g, dy, dx);                                                                             \
  }                                                                                             \
  void maxpool_forward(const PoolShape& g, const T* x, T* y, int32_t* argmax, Stream s) {       \
    maxpool_forward_kernel<<<blocks_for(g.n * g.out_h * g.out_w * g.c), kThreads, 0, s>>>(     \
        g, x, y, argmax);                                                                       \
  }                                                                                             \
  void maxpool_backward(const PoolShape& g, const T* dy, const int32_t* argmax, T* dx,          \
                        Stream s) {                                                             \
    maxpool_backward_kernel<<<blocks_for(g.n * g.h * g.w * g.c), kThreads, 0, s>>>(            \
        g, dy, argmax, dx);                                                                     \
  }                                                                                             \
  void gelu_forward(const T* x, T* y, int64_t n, Stream s) {                                    \
    gelu_forward_kernel<<<blocks_for(n), kThreads, 0, s>>>(x, y, n);                            \
  }                                                                                             \
  void gelu_backward(const T* x, const T* dy, T* dx, int64_t n, Stream s) {                     \
    gelu_backward_kernel<<<blocks_for(n), kThreads, 0, s>>>(x, dy, dx, n);                      \
  }                                                                                             \
  void scale(const T* x, float alpha, T* y, int64_t n, Stream s) {                              \
    scale_kernel<<<blocks_for(n), kThreads, 0, s>>>(x, alpha, y, n);                            \
  }                                                                                             \
  void channel_bias_forward(const float* b, T* y, int64_t rows, int64_t c, Stream s) {          \
    channel_bias_forward_kernel<<<blocks_for(rows * c), kThreads, 0, s>>>(b, y, rows, c);       \
  }                                                                                             \
  void channel_bias_backward(const T* dy, float* db, int64_t rows, int64_t c, Stream s) {       \
    channel_bias_backward_kernel<<<static_cast<int>(c), kThreads, 0, s>>>(dy, db, rows, c);     \
  }                                                                                             \
  void oihw_to_ohwi(const float* src, T* dst, int64_t o, int64_t i, int64_t hw, Stream s) {     \
    oihw_to_ohwi_kernel<<<blocks_for(o * i * hw), kThreads, 0, s>>>(src, dst, o, i, hw);        \
  }                                                                                             \
  void ohwi_to_oihw(const T* src, float* dst, int64_t o, int64_t i, int64_t hw, Stream s) {     \
    ohwi_to_oihw_kernel<<<blocks_for(o * i * hw), kThreads, 0, s>>>(src, dst, o, i, hw);        \
  }

DP_ACTIVATION_LAUNCHERS(float)
DP_ACTIVATION_LAUNCHERS(bf16)
#undef DP_ACTIVATION_LAUNCHERS

void convert(const float* src, bf16* dst, int64_t n, Stream s) {
  convert_kernel<<<blocks_for(n), kThreads, 0, s>>>(src, dst, n);
}
void convert(const bf16* src, float* dst, int64_t n, Stream s) {
  convert_kernel<<<blocks_for(n), kThreads, 0, s>>>(src, dst, n);
}
void broadcast_rows(const float* b, float* y, int64_t rows, int64_t cols, Stream s) {
  broadcast_rows_kernel<<<blocks_for(rows * cols), kThreads, 0, s>>>(b, y, rows, cols);
}
void column_sums(const float* dy, float* db, int64_t rows, int64_t cols, Stream s) {
  column_sums_kernel<<<blocks_for(cols), kThreads, 0, s>>>(dy, db, rows, cols);
}
void softmax_cross_entropy(const float* logits, const int32_t* labels, int64_t n, int64_t k,
                           float smoothing, float* dlogits, float* row_loss, int32_t* hit,
                           int32_t* bad, Stream s) {
  const int64_t threads = n * 32;
  const int blocks = static_cast<int>((threads + kThreads - 1) / kThreads);
  softmax_xent_kernel<<<blocks, kThreads, 0, s>>>(logits, labels, n, k, smoothing, dlogits,
                                                  row_loss, hit, bad);
}
void sgd_step(const SgdHyper& h, float* w, const float* g, float* buf, const float* mask, int64_t n,
              Stream s) {
  sgd_kernel<<<blocks_for(n), kThreads, 0, s>>>(h, w, g, buf, mask, n);
}
int sum_of_squares_blocks(int64_t n) {
  int b = blocks_for(n);
  return b > 1024 ? 1024 : b;
}
void sum_of_squares(const float* x, int64_t n, double* partials, int blocks, Stream s) {
  sum_of_squares_kernel<<<blocks, kThreads, 0, s>>>(x, n, partials);
}
void augment_batch(const AugmentShape& g, const uint8_t* images, const int32_t* crop_yx,
                   const uint8_t* flip, const float* mean, const float* std, float* out,
                   Stream s) {
  augment_kernel<<<blocks_for(g.n * g.h * g.w * g.c), kThreads, 0, s>>>(g, images, crop_yx, flip,
                                                                       mean, std, out);
}

}  // namespace dp::cuda::kernels
