// Launchers for the CUDA backend's own kernels (one <group>_kernels.cu per op group, as the
// backend's cuda_backend_<group>.cpp files; their launch shape in grid_stride.cuh): the
// memory-bound ops where a library call would add nothing. Plain C++ declarations, so the
// backend's .cpp files need no nvcc; every launcher queues work on `stream` and returns
// without synchronising.
#pragma once

#include <cstdint>

#include "backend/sgd_update.h"

struct CUstream_st;

namespace dp::cuda::kernels {

using Stream = CUstream_st*;

// A bfloat16 value as stored (the top 16 bits of an IEEE float), so host code can hold and
// pass pointers to bf16 buffers without cuda_bf16.h; the kernels convert with CUDA's intrinsics.
struct bf16 {
  uint16_t bits;
};

void fill_f32(float* p, int64_t n, float value, Stream s);
void fill_i32(int32_t* p, int64_t n, int32_t value, Stream s);
void fill_u8(uint8_t* p, int64_t n, uint8_t value, Stream s);
void fill_bf16(bf16* p, int64_t n, float value, Stream s);

// The activation ops come for both element types of an activation: float, and bf16 under
// mixed precision (arithmetic in float, each stored value rounded to nearest even).
void relu_forward(const float* x, float* y, int64_t n, Stream s);
void relu_forward(const bf16* x, bf16* y, int64_t n, Stream s);
// dx = dy where y > 0 else 0 (also the add+ReLU backward: the mask of the block's output).
void relu_backward(const float* y, const float* dy, float* dx, int64_t n, Stream s);
void relu_backward(const bf16* y, const bf16* dy, bf16* dx, int64_t n, Stream s);
void add_relu_forward(const float* a, const float* b, float* y, int64_t n, Stream s);
void add_relu_forward(const bf16* a, const bf16* b, bf16* y, int64_t n, Stream s);
void accumulate(const float* x, float* y, int64_t n, Stream s);
void accumulate(const bf16* x, bf16* y, int64_t n, Stream s);
// y = (y + x) where relu_output > 0 else 0 (Backend::accumulate_relu_backward).
void accumulate_relu_backward(const float* x, const float* relu_output, float* y, int64_t n,
                              Stream s);
void accumulate_relu_backward(const bf16* x, const bf16* relu_output, bf16* y, int64_t n,
                              Stream s);
// GELU, erf form (Backend::gelu_*): backward from the forward's input x.
void gelu_forward(const float* x, float* y, int64_t n, Stream s);
void gelu_forward(const bf16* x, bf16* y, int64_t n, Stream s);
void gelu_backward(const float* x, const float* dy, float* dx, int64_t n, Stream s);
void gelu_backward(const bf16* x, const bf16* dy, bf16* dx, int64_t n, Stream s);
// y = alpha * x (y may be x).
void scale(const float* x, float alpha, float* y, int64_t n, Stream s);
void scale(const bf16* x, float alpha, bf16* y, int64_t n, Stream s);
// NHWC {rows, c}: y[r, k] += b[k]. Its gradient, db[k] = sum over r of dy[r, k], is
// sync_bn_kernels.h's deterministic channel_sum.
void channel_bias_forward(const float* b, float* y, int64_t rows, int64_t c, Stream s);
void channel_bias_forward(const float* b, bf16* y, int64_t rows, int64_t c, Stream s);

// {N, HW, C} -> {N, C} mean over HW (summed in float), and its backward (broadcast / HW).
void global_avgpool_forward(const float* x, float* y, int64_t n, int64_t hw, int64_t c, Stream s);
void global_avgpool_forward(const bf16* x, bf16* y, int64_t n, int64_t hw, int64_t c, Stream s);
void global_avgpool_backward(const float* dy, float* dx, int64_t n, int64_t hw, int64_t c,
                             Stream s);
void global_avgpool_backward(const bf16* dy, bf16* dx, int64_t n, int64_t hw, int64_t c,
                             Stream s);

// He et al.'s option-A shortcut, NHWC (Backend::subsample_pad_*): y[b, i, j, k] =
// x[b, i*stride, j*stride, k] for k < c_in, 0 above; backward gathers each dx element from the
// dy element the forward copied it to (0 at pixels the forward skipped), so every element is
// written once, without atomics.
struct SubsamplePadShape {
  int64_t n, h, w, c_in, out_h, out_w, c_out, stride;
};
void subsample_pad_forward(const SubsamplePadShape& g, const float* x, float* y, Stream s);
void subsample_pad_forward(const SubsamplePadShape& g, const bf16* x, bf16* y, Stream s);
void subsample_pad_backward(const SubsamplePadShape& g, const float* dy, float* dx, Stream s);
void subsample_pad_backward(const SubsamplePadShape& g, const bf16* dy, bf16* dx, Stream s);

// Element type conversions (mixed precision: the network input, the linear layer's gradient).
void convert(const float* src, bf16* dst, int64_t n, Stream s);
void convert(const bf16* src, float* dst, int64_t n, Stream s);

struct PoolShape {
  int64_t n, h, w, c, out_h, out_w, kernel, stride, pad;
};
// Max pooling, NHWC; argmax[i] = the input's flat HxW index of output i's maximum (-1 when a
// window holds only padding). Backward gathers (each input sums the outputs that chose it),
// so it needs no atomics and is deterministic.
void maxpool_forward(const PoolShape& g, const float* x, float* y, int32_t* argmax, Stream s);
void maxpool_forward(const PoolShape& g, const bf16* x, bf16* y, int32_t* argmax, Stream s);
void maxpool_backward(const PoolShape& g, const float* dy, const int32_t* argmax, float* dx,
                      Stream s);
void maxpool_backward(const PoolShape& g, const bf16* dy, const int32_t* argmax, bf16* dx,
                      Stream s);

// y[i, j] = b[j] for a {rows, cols} matrix (the linear layer's bias before the GEMM adds).
void broadcast_rows(const float* b, float* y, int64_t rows, int64_t cols, Stream s);
// db[j] = sum_i dy[i, j], in a fixed order.
void column_sums(const float* dy, float* db, int64_t rows, int64_t cols, Stream s);

// Conv weights {O, I, KH, KW} (PyTorch, f32 master copy) <-> {O, KH, KW, I} (cuDNN's NHWC
// filter layout, in the convolution's element type: the weights are rounded to bf16 on the
// way in and the weight gradient widened to f32 on the way out under mixed precision).
void oihw_to_ohwi(const float* src, float* dst, int64_t o, int64_t i, int64_t hw, Stream s);
void oihw_to_ohwi(const float* src, bf16* dst, int64_t o, int64_t i, int64_t hw, Stream s);
void ohwi_to_oihw(const float* src, float* dst, int64_t o, int64_t i, int64_t hw, Stream s);
void ohwi_to_oihw(const bf16* src, float* dst, int64_t o, int64_t i, int64_t hw, Stream s);

// Softmax cross-entropy with label smoothing, one warp per row: row_loss[i] (not yet averaged),
// hit[i] = argmax == label, bad[i] = label out of range; dlogits already divided by n.
void softmax_cross_entropy(const float* logits, const int32_t* labels, int64_t n, int64_t k,
                           float smoothing, float* dlogits, float* row_loss, int32_t* hit,
                           int32_t* bad, Stream s);

// PyTorch SGD over flat buffers: sgd_update (sgd_update.h) on every element, as the CPU
// backend's sgd_step. buf is null without momentum; mask null decays every element.
void sgd_step(const SgdHyper& h, float* w, const float* g, float* buf, const float* mask, int64_t n,
              Stream s);

// Partial sums of squares in double: writes `blocks` partials; the caller adds them up.
int sum_of_squares_blocks(int64_t n);
void sum_of_squares(const float* x, int64_t n, double* partials, int blocks, Stream s);

// The batch augmentation on the GPU, the arithmetic of data::Augmenter::apply: u8 NHWC images
// {n, h, w, c} -> f32 NHWC; image b is cropped at (crop_yx[2b], crop_yx[2b+1]) from its copy
// padded by `pad` zero pixels, mirrored where flip[b] != 0, and mapped to v/255, then
// (v/255 - mean[c]) / std[c] when mean/std are given (null: no normalisation).
struct AugmentShape {
  int64_t n, h, w, c, pad;
  bool reflect;  // reflected padding (augment::reflect_index) instead of zero pixels
};
void augment_batch(const AugmentShape& g, const uint8_t* images, const int32_t* crop_yx,
                   const uint8_t* flip, const float* mean, const float* std, float* out,
                   Stream s);

}  // namespace dp::cuda::kernels
