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

// A valid option-A shortcut geometry (stride >= 1, c_out >= c_in >= 1) and an operand of `op`
// that must have the shape `shape` (the input, or the output gradient).
void check_subsample_pad_operands(const SubsamplePadGeometry& g, const Tensor& t,
                                  const Shape& shape, const char* op);

// Two operands of `op` that must hold as many elements as each other.
void check_same_numel(const Tensor& a, const Tensor& b, const char* op);

// Operands of an op that has only an f32 kernel (a bf16 one would be misread as f32).
void check_f32(const char* op, std::initializer_list<const Tensor*> operands);

}  // namespace dp
