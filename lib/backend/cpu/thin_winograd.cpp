// F(4x4, 3x3) Winograd (Lavin & Gray 2015): Y = A^T [(G g G^T) . (B^T d B)] A for each 6x6
// input tile d and 4x4 output tile Y, with the standard interpolation points 0, +-1, +-2, inf.
#include "backend/cpu/thin_winograd.h"

#include <omp.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <utility>

#include "backend/cpu/simd_lanes.h"
#include "core/env_switch.h"

namespace dp::cpu {
namespace {

constexpr int kChannels = int(simd::kLanes);  // one AVX-512 register of floats
constexpr int kTile = 4;       // output tile edge
constexpr int kWindow = 6;     // input tile edge: kTile + 3 - 1
constexpr int kPoints = kWindow * kWindow;
constexpr int kTilesPerBlock = 8;  // tiles multiplied together: 8 accumulators + 16 weight rows

constexpr double G[kWindow][3] = {{1.0 / 4, 0, 0},
                                  {-1.0 / 6, -1.0 / 6, -1.0 / 6},
                                  {-1.0 / 6, 1.0 / 6, -1.0 / 6},
                                  {1.0 / 24, 1.0 / 12, 1.0 / 6},
                                  {1.0 / 24, -1.0 / 12, 1.0 / 6},
                                  {0, 0, 1}};

// G g G^T for every (in, out) channel pair, in double (the transform's fractions round once).
// flip_transpose: the backward-data kernel, g'[ci][co] = g[co][ci] rotated by 180 degrees.
void transform_weights(const float* w, bool flip_transpose, float* u) {
  for (int to = 0; to < kChannels; ++to)
    for (int from = 0; from < kChannels; ++from) {
      double g[3][3];
      for (int a = 0; a < 3; ++a)
        for (int b = 0; b < 3; ++b)
          g[a][b] = flip_transpose ? w[((from * kChannels + to) * 3 + 2 - a) * 3 + 2 - b]
                                   : w[((to * kChannels + from) * 3 + a) * 3 + b];
      double gt[kWindow][3];
      for (int i = 0; i < kWindow; ++i)
        for (int b = 0; b < 3; ++b)
          gt[i][b] = G[i][0] * g[0][b] + G[i][1] * g[1][b] + G[i][2] * g[2][b];
      for (int i = 0; i < kWindow; ++i)
        for (int j = 0; j < kWindow; ++j)
          u[((i * kWindow + j) * kChannels + from) * kChannels + to] =
              static_cast<float>(gt[i][0] * G[j][0] + gt[i][1] * G[j][1] + gt[i][2] * G[j][2]);
    }
}

// One dimension of B^T d: six inputs to six outputs.
DP_AVX512F inline void input_transform(const __m512 d[kWindow], __m512 t[kWindow]) {
  const __m512 four = _mm512_set1_ps(4.f), minus_four = _mm512_set1_ps(-4.f),
               minus_five = _mm512_set1_ps(-5.f), two = _mm512_set1_ps(2.f);
  const __m512 a = _mm512_fmadd_ps(minus_four, d[2], d[4]);
  const __m512 b = _mm512_fmadd_ps(minus_four, d[1], d[3]);
  const __m512 c = _mm512_sub_ps(d[4], d[2]);
  const __m512 e = _mm512_mul_ps(two, _mm512_sub_ps(d[3], d[1]));
  t[0] = _mm512_fmadd_ps(four, d[0], _mm512_fmadd_ps(minus_five, d[2], d[4]));
  t[1] = _mm512_add_ps(a, b);
  t[2] = _mm512_sub_ps(a, b);
  t[3] = _mm512_add_ps(c, e);
  t[4] = _mm512_sub_ps(c, e);
  t[5] = _mm512_fmadd_ps(four, d[1], _mm512_fmadd_ps(minus_five, d[3], d[5]));
}

// One dimension of A^T m: six inputs to four outputs.
DP_AVX512F inline void output_transform(const __m512 m[kWindow], __m512 o[kTile]) {
  const __m512 p = _mm512_add_ps(m[1], m[2]), q = _mm512_sub_ps(m[1], m[2]);
  const __m512 r = _mm512_add_ps(m[3], m[4]), s = _mm512_sub_ps(m[3], m[4]);
  o[0] = _mm512_add_ps(_mm512_add_ps(m[0], p), r);
  o[1] = _mm512_fmadd_ps(_mm512_set1_ps(2.f), s, q);
  o[2] = _mm512_fmadd_ps(_mm512_set1_ps(4.f), r, p);
  o[3] = _mm512_add_ps(_mm512_fmadd_ps(_mm512_set1_ps(8.f), s, q), m[5]);
}

// One dimension of A g, the adjoint of output_transform: four gradients to six.
DP_AVX512F inline void gradient_transform(const __m512 g[kTile], __m512 t[kWindow]) {
  const __m512 even = _mm512_add_ps(g[0], g[2]), odd = _mm512_add_ps(g[1], g[3]);
  const __m512 even4 = _mm512_fmadd_ps(_mm512_set1_ps(4.f), g[2], g[0]);
  const __m512 odd8 = _mm512_fmadd_ps(_mm512_set1_ps(8.f), g[3], _mm512_add_ps(g[1], g[1]));
  t[0] = g[0];
  t[1] = _mm512_add_ps(even, odd);
  t[2] = _mm512_sub_ps(even, odd);
  t[3] = _mm512_add_ps(even4, odd8);
  t[4] = _mm512_sub_ps(even4, odd8);
  t[5] = g[3];
}

using TileBlock = float[kPoints][kTilesPerBlock][kChannels];

// V (transformed input, [point][tile][in]) times U ([point][in][out]) into M ([point][tile][out]),
// for `Tiles` tiles. The 16 weight rows of a point stay in registers across the tiles.
template <int Tiles>
DP_AVX512F void multiply(const float* u, const TileBlock& v, TileBlock& m) {
  for (int p = 0; p < kPoints; ++p) {
    __m512 weights[kChannels];
#pragma GCC unroll 16
    for (int c = 0; c < kChannels; ++c)
      weights[c] = _mm512_loadu_ps(u + (p * kChannels + c) * kChannels);
    __m512 acc[Tiles];
#pragma GCC unroll 8
    for (int t = 0; t < Tiles; ++t) acc[t] = _mm512_setzero_ps();
#pragma GCC unroll 16
    for (int c = 0; c < kChannels; ++c)
#pragma GCC unroll 8
      for (int t = 0; t < Tiles; ++t)
        acc[t] = _mm512_fmadd_ps(_mm512_set1_ps(v[p][t][c]), weights[c], acc[t]);
#pragma GCC unroll 8
    for (int t = 0; t < Tiles; ++t) _mm512_store_ps(m[p][t], acc[t]);
  }
}

// multiply<1> .. multiply<kTilesPerBlock>, indexed by tile count - 1: the count is a template
// argument so the accumulators stay in registers.
using MultiplyKernel = void (*)(const float*, const TileBlock&, TileBlock&);
template <int... Counts>
constexpr std::array<MultiplyKernel, sizeof...(Counts)> multiply_kernels(
    std::integer_sequence<int, Counts...>) {
  return {&multiply<Counts + 1>...};
}
constexpr auto kMultiply = multiply_kernels(std::make_integer_sequence<int, kTilesPerBlock>());

// T x T^T for the tile whose `In` x `In` values start at `base` (rows row_stride floats apart),
// into v[.][t], where `Transform` is T along one dimension, `In` points to kWindow: column by
// column into `half`, then row by row. B^T d B of an input window (In = 6, input_transform)
// and A g A^T of an output-gradient tile (In = 4, gradient_transform) are both this.
template <int In, void (*Transform)(const __m512*, __m512*)>
DP_AVX512F void transform_tile(const float* base, int64_t row_stride, int t, TileBlock& v) {
  alignas(64) float half[kWindow][In][kChannels];
#pragma GCC unroll 6
  for (int col = 0; col < In; ++col) {
    __m512 d[In], out[kWindow];
#pragma GCC unroll 6
    for (int row = 0; row < In; ++row)
      d[row] = _mm512_load_ps(base + row * row_stride + col * kChannels);
    Transform(d, out);
#pragma GCC unroll 6
    for (int i = 0; i < kWindow; ++i) _mm512_store_ps(half[i][col], out[i]);
  }
#pragma GCC unroll 6
  for (int i = 0; i < kWindow; ++i) {
    __m512 d[In], out[kWindow];
#pragma GCC unroll 6
    for (int col = 0; col < In; ++col) d[col] = _mm512_load_ps(half[i][col]);
    Transform(d, out);
#pragma GCC unroll 6
    for (int j = 0; j < kWindow; ++j) _mm512_store_ps(v[i * kWindow + j][t], out[j]);
  }
}

// A^T m A of tile t, written to the output at (y0, x0) where it lies inside the h x w map.
DP_AVX512F void transform_output_tile(const TileBlock& m, int t, float* out, int64_t h, int64_t w,
                                      int64_t y0, int64_t x0) {
  alignas(64) float half[kTile][kWindow][kChannels];  // A^T m, column by column
#pragma GCC unroll 6
  for (int col = 0; col < kWindow; ++col) {
    __m512 in[kWindow], o[kTile];
#pragma GCC unroll 6
    for (int row = 0; row < kWindow; ++row) in[row] = _mm512_load_ps(m[row * kWindow + col][t]);
    output_transform(in, o);
#pragma GCC unroll 4
    for (int row = 0; row < kTile; ++row) _mm512_store_ps(half[row][col], o[row]);
  }
  const int rows = static_cast<int>(std::min<int64_t>(kTile, h - y0));
  const int cols = static_cast<int>(std::min<int64_t>(kTile, w - x0));
  for (int row = 0; row < rows; ++row) {
    __m512 in[kWindow], o[kTile];
#pragma GCC unroll 6
    for (int j = 0; j < kWindow; ++j) in[j] = _mm512_load_ps(half[row][j]);
    output_transform(in, o);
    float* dst = out + ((y0 + row) * w + x0) * kChannels;
    if (cols == kTile && reinterpret_cast<uintptr_t>(dst) % 64 == 0) {
      // Streaming stores: the output (8 MB at batch 128) is larger than L2 either way, and
      // they skip reading each line before writing it
      // (see tests/bench/results/code-measurements-backend.md).
#pragma GCC unroll 4
      for (int c = 0; c < kTile; ++c) _mm512_stream_ps(dst + c * kChannels, o[c]);
    } else {
      for (int c = 0; c < cols; ++c) _mm512_storeu_ps(dst + c * kChannels, o[c]);
    }
  }
}

// Rows y0-1 .. y0+4 of one image, each with a zero pixel left of column 0 and zeros right of
// the last column up to the padded width: every tile then reads its window without bounds checks.
void gather_rows(const float* image, int64_t h, int64_t w, int64_t y0, int64_t padded_w,
                 float* rows) {
  const int64_t stride = padded_w * kChannels;
  for (int k = 0; k < kWindow; ++k) {
    float* row = rows + k * stride;
    const int64_t src_y = y0 - 1 + k;
    if (src_y < 0 || src_y >= h) {
      std::memset(row, 0, sizeof(float) * stride);
      continue;
    }
    std::memset(row, 0, sizeof(float) * kChannels);
    std::memcpy(row + kChannels, image + src_y * w * kChannels, sizeof(float) * w * kChannels);
    std::memset(row + (w + 1) * kChannels, 0, sizeof(float) * (padded_w - w - 1) * kChannels);
  }
}

DP_AVX512F void convolve_row_of_tiles(const float* u, const float* rows, int64_t padded_w,
                                      float* out_image, int64_t h, int64_t w, int64_t y0) {
  alignas(64) TileBlock v, m;
  const int64_t tiles_across = (w + kTile - 1) / kTile;
  for (int64_t first = 0; first < tiles_across; first += kTilesPerBlock) {
    const int tiles = static_cast<int>(std::min<int64_t>(kTilesPerBlock, tiles_across - first));
    for (int t = 0; t < tiles; ++t)
      transform_tile<kWindow, input_transform>(rows + (first + t) * kTile * kChannels,
                                               padded_w * kChannels, t, v);
    kMultiply[tiles - 1](u, v, m);
    for (int t = 0; t < tiles; ++t)
      transform_output_tile(m, t, out_image, h, w, y0, (first + t) * kTile);
  }
}

// --- backward-weights: dU = sum over tiles of (B^T d B) (x) (A dy A^T), then dw = G^T dU G ------

// acc[point][in][out] += v[point][t][in] * d[point][t][out] over `Tiles` tiles: the 16 rows of a
// point's accumulator stay in registers across the tiles.
template <int Tiles>
DP_AVX512F void accumulate_products(const TileBlock& v, const TileBlock& d, float* acc) {
  for (int p = 0; p < kPoints; ++p) {
    float* point = acc + p * kChannels * kChannels;
    __m512 sums[kChannels];
#pragma GCC unroll 16
    for (int c = 0; c < kChannels; ++c) sums[c] = _mm512_load_ps(point + c * kChannels);
#pragma GCC unroll 8
    for (int t = 0; t < Tiles; ++t) {
      const __m512 grad = _mm512_load_ps(d[p][t]);
#pragma GCC unroll 16
      for (int c = 0; c < kChannels; ++c)
        sums[c] = _mm512_fmadd_ps(_mm512_set1_ps(v[p][t][c]), grad, sums[c]);
    }
#pragma GCC unroll 16
    for (int c = 0; c < kChannels; ++c) _mm512_store_ps(point + c * kChannels, sums[c]);
  }
}

// accumulate_products<1> .. <kTilesPerBlock>, indexed by tile count - 1 (as kMultiply).
using AccumulateKernel = void (*)(const TileBlock&, const TileBlock&, float*);
template <int... Counts>
constexpr std::array<AccumulateKernel, sizeof...(Counts)> accumulate_kernels(
    std::integer_sequence<int, Counts...>) {
  return {&accumulate_products<Counts + 1>...};
}
constexpr auto kAccumulate = accumulate_kernels(std::make_integer_sequence<int, kTilesPerBlock>());

// Rows y0 .. y0+3 of an output gradient, zero past the map's last row and column.
void gather_gradient_rows(const float* image, int64_t h, int64_t w, int64_t y0, int64_t padded_w,
                          float* rows) {
  const int64_t stride = padded_w * kChannels;
  for (int k = 0; k < kTile; ++k) {
    float* row = rows + k * stride;
    if (y0 + k >= h) {
      std::memset(row, 0, sizeof(float) * stride);
      continue;
    }
    std::memcpy(row, image + (y0 + k) * w * kChannels, sizeof(float) * w * kChannels);
    std::memset(row + w * kChannels, 0, sizeof(float) * (padded_w - w) * kChannels);
  }
}

DP_AVX512F void accumulate_row_of_tiles(const float* rows, const float* grad_rows, int64_t padded_w,
                                        int64_t w, float* acc) {
  alignas(64) TileBlock v, d;
  const int64_t tiles_across = (w + kTile - 1) / kTile;
  for (int64_t first = 0; first < tiles_across; first += kTilesPerBlock) {
    const int tiles = static_cast<int>(std::min<int64_t>(kTilesPerBlock, tiles_across - first));
    for (int t = 0; t < tiles; ++t) {
      transform_tile<kWindow, input_transform>(rows + (first + t) * kTile * kChannels,
                                               padded_w * kChannels, t, v);
      transform_tile<kTile, gradient_transform>(grad_rows + (first + t) * kTile * kChannels,
                                                padded_w * kChannels, t, d);
    }
    kAccumulate[tiles - 1](v, d, acc);
  }
}

// dw[out][in][a][b] = (G^T dU[in][out] G)[a][b], the adjoint of transform_weights.
void weight_gradient(const double* du, float* dw) {
  for (int to = 0; to < kChannels; ++to)
    for (int from = 0; from < kChannels; ++from)
      for (int a = 0; a < 3; ++a)
        for (int b = 0; b < 3; ++b) {
          double sum = 0;
          for (int i = 0; i < kWindow; ++i)
            for (int j = 0; j < kWindow; ++j)
              sum +=
                  G[i][a] * G[j][b] * du[((i * kWindow + j) * kChannels + from) * kChannels + to];
          dw[((to * kChannels + from) * 3 + a) * 3 + b] = static_cast<float>(sum);
        }
}

// The 64-byte aligned start of a float buffer allocated with 16 floats to spare.
float* aligned_start(std::vector<float>& buffer) {
  const auto address = reinterpret_cast<uintptr_t>(buffer.data());
  return buffer.data() + ((64 - address % 64) % 64) / sizeof(float);
}

}  // namespace

bool thin_winograd_from_environment() { return !env_switch("DPTRAIN_CPU_CONV_THIN", "on", "off"); }

bool ThinWinograd::applies(const Conv2dGeometry& g) {
  return simd::cpu_has_avx512f() && g.kernel == 3 && g.stride == 1 && g.pad == 1 && g.trim == 0 &&
         g.c_in == kChannels && g.c_out == kChannels && g.h >= 8 && g.w >= 8;
}

void ThinWinograd::forward(const Conv2dGeometry& g, const Tensor& x, const Tensor& w, Tensor& y) {
  y.ensure({g.n, g.h, g.w, kChannels});
  transformed_weights_.resize(kPoints * kChannels * kChannels);
  transform_weights(w.data<float>(), false, transformed_weights_.data());
  convolve(g, x.data<float>(), y.data<float>());
}

void ThinWinograd::backward_data(const Conv2dGeometry& g, const Tensor& w, const Tensor& dy,
                                 Tensor& dx, Layout dx_layout) {
  dx.ensure({g.n, g.h, g.w, kChannels});
  dx.set_layout(dx_layout);
  transformed_weights_.resize(kPoints * kChannels * kChannels);
  transform_weights(w.data<float>(), true, transformed_weights_.data());
  convolve(g, dy.data<float>(), dx.data<float>());
}

void ThinWinograd::backward_weights(const Conv2dGeometry& g, const Tensor& x, const Tensor& dy,
                                    Tensor& dw) {
  dw.ensure({kChannels, kChannels, 3, 3});
  constexpr int64_t kProducts = kPoints * kChannels * kChannels;
  // Each thread sums in float over this many rows of tiles, then adds into its double sums: the
  // float sums stay short (rounding grows with their length), the double adds stay rare.
  constexpr int kRowsPerFlush = 32;
  const int64_t tiles_down = (g.h + kTile - 1) / kTile;
  const int64_t padded_w = (g.w + kTile - 1) / kTile * kTile + 2;
  const int64_t per_thread = (kWindow + kTile) * padded_w * kChannels + kProducts;
  const int threads = omp_get_max_threads();
  const size_t needed = static_cast<size_t>(threads * per_thread + kChannels);
  if (padded_rows_.size() < needed) padded_rows_.resize(needed);
  weight_grad_sums_.assign(static_cast<size_t>(threads * kProducts), 0.0);
  float* const base = aligned_start(padded_rows_);
  const int64_t image = g.h * g.w * kChannels;
  const float* xs = x.data<float>();
  const float* dys = dy.data<float>();
#pragma omp parallel num_threads(threads)
  {
    const int thread = omp_get_thread_num();
    float* rows = base + thread * per_thread;
    float* grad_rows = rows + kWindow * padded_w * kChannels;
    float* acc = grad_rows + kTile * padded_w * kChannels;
    double* sums = weight_grad_sums_.data() + thread * kProducts;
    const auto flush = [&] {
      for (int64_t i = 0; i < kProducts; ++i) sums[i] += acc[i];
      std::fill(acc, acc + kProducts, 0.0f);
    };
    std::fill(acc, acc + kProducts, 0.0f);
    int rows_since_flush = 0;
#pragma omp for schedule(static) nowait
    for (int64_t item = 0; item < g.n * tiles_down; ++item) {
      const int64_t n = item / tiles_down, y0 = item % tiles_down * kTile;
      gather_rows(xs + n * image, g.h, g.w, y0, padded_w, rows);
      gather_gradient_rows(dys + n * image, g.h, g.w, y0, padded_w, grad_rows);
      accumulate_row_of_tiles(rows, grad_rows, padded_w, g.w, acc);
      if (++rows_since_flush == kRowsPerFlush) {
        flush();
        rows_since_flush = 0;
      }
    }
    flush();
  }
  for (int t = 1; t < threads; ++t)
    for (int64_t i = 0; i < kProducts; ++i)
      weight_grad_sums_[i] += weight_grad_sums_[t * kProducts + i];
  weight_gradient(weight_grad_sums_.data(), dw.data<float>());
}

void ThinWinograd::convolve(const Conv2dGeometry& g, const float* in, float* out) {
  const int64_t tiles_down = (g.h + kTile - 1) / kTile;
  const int64_t padded_w = (g.w + kTile - 1) / kTile * kTile + 2;
  const int64_t rows_per_thread = kWindow * padded_w * kChannels;
  const int threads = omp_get_max_threads();
  const size_t needed = static_cast<size_t>(threads * rows_per_thread + kChannels);
  if (padded_rows_.size() < needed) padded_rows_.resize(needed);
  float* const rows_base = aligned_start(padded_rows_);
  const float* u = transformed_weights_.data();
  const int64_t image = g.h * g.w * kChannels;
#pragma omp parallel num_threads(threads)
  {
    float* rows = rows_base + omp_get_thread_num() * rows_per_thread;
#pragma omp for schedule(static) nowait
    for (int64_t item = 0; item < g.n * tiles_down; ++item) {
      const int64_t n = item / tiles_down, y0 = item % tiles_down * kTile;
      gather_rows(in + n * image, g.h, g.w, y0, padded_w, rows);
      convolve_row_of_tiles(u, rows, padded_w, out + n * image, g.h, g.w, y0);
    }
    _mm_sfence();  // the streaming stores are weakly ordered: make them visible before the barrier
  }
}

}  // namespace dp::cpu
