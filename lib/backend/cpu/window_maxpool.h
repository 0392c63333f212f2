// Max pooling over non-overlapping windows (stride = kernel, no padding: airbench's pools) with
// own AVX-512 loops over f32 or bf16 activations in NHWC or nChw16c, one pass each way.
// oneDNN's backward zero-fills dx and then scatters into it: two passes over what is, in
// airbench, the largest gradient of the network; here every element of dx is written once.
// Other geometries run on oneDNN (onednn_pool.cpp).
#pragma once

#include "backend/backend.h"
#include "core/tensor.h"

namespace dp::cpu {

// Whether these loops take pooling g of activations of this type: the route depends on neither
// layout, so a backward always finds the workspace its forward wrote.
bool window_maxpool_handles(const PoolGeometry& g, DType dtype);

// y = the maximum of each window as PyTorch takes it: the first maximum in row-major window
// order wins, and a NaN wins over every number. workspace: one byte per element of y in y's
// layout (its tag records that layout), the winner's place in its window (kh * kernel + kw).
void window_maxpool_forward(const PoolGeometry& g, const Tensor& x, Tensor& y, Tensor& workspace);

// dx = dy at each window's winner and 0 elsewhere, the rows and columns no window covers
// included; dy and dx are in the workspace's layout.
void window_maxpool_backward(const PoolGeometry& g, const Tensor& dy, const Tensor& workspace,
                             Tensor& dx);

}  // namespace dp::cpu
