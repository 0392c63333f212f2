// The operand checks every Backend implementation shares (not part of the Backend interface):
// each throws a dp::Error naming the op and the operand that is wrong.
#pragma once

#include <initializer_list>

#include "backend/backend.h"

namespace dp {

// The augment_batch operand whose type or shape is wrong.
void check_augment_operands(const AugmentSpec& spec, const Tensor& images, const Tensor& crop_yx,
                            const Tensor& flip);

// The batch-norm operand whose shape does not match the geometry: x must be {n, h, w, c}, and
// each per-channel tensor must hold g.c values.
void check_batchnorm_operands(const BatchNormGeometry& g, const Tensor& x,
                              std::initializer_list<const Tensor*> per_channel);

// A valid option-A shortcut geometry (stride >= 1, c_out >= c_in >= 1, checked before the
// output's size divides by the stride) and the input x {n, h, w, c_in}, or the output gradient
// dy {n, out_h, out_w, c_out}, of `op`.
void check_subsample_pad_input(const SubsamplePadGeometry& g, const Tensor& x, const char* op);
void check_subsample_pad_output_gradient(const SubsamplePadGeometry& g, const Tensor& dy,
                                         const char* op);

// A valid convolution geometry (trim included) and operands that match it: x {n, h, w, c_in},
// w {c_out, c_in, k, k} and, for the backward pass, dy {n, out_h, out_w, c_out}.
void check_conv_operands(const Conv2dGeometry& g, const Tensor& x, const Tensor& w,
                         const Tensor* dy);

// A valid max-pooling geometry (padding at most half the window, checked before its output
// size is computed) and the operand of `op`: the input {n, h, w, c}, or the output gradient
// {n, out_h, out_w, c}.
void check_pool_input(const PoolGeometry& g, const Tensor& x, const char* op);
void check_pool_output_gradient(const PoolGeometry& g, const Tensor& dy, const char* op);

// Global average pooling's operands: x NHWC in forward; in backward dx allocated NHWC, one dy
// value per (sample, channel).
void check_global_avgpool_forward(const Tensor& x);
void check_global_avgpool_backward(const Tensor& dy, const Tensor& dx);

// softmax_cross_entropy's operands: logits {n, k}, i32 labels, one per row (their range is
// the data's to check: a label outside [0, k) is a DataError where the backend reads them).
void check_loss_operands(const Tensor& logits, const Tensor& labels);

// Two operands of `op` that must hold as many elements as each other.
void check_same_numel(const Tensor& a, const Tensor& b, const char* op);

// Operands of an op that has only an f32 kernel (a bf16 one would be misread as f32).
void check_f32(const char* op, std::initializer_list<const Tensor*> operands);

}  // namespace dp
