// The operand checks of operand_checks.h.
#include "backend/operand_checks.h"

#include "core/error.h"

namespace dp {

void check_augment_operands(const AugmentSpec& spec, const Tensor& images, const Tensor& crop_yx,
                            const Tensor& flip) {
  DP_CHECK(images.dtype() == DType::u8 && images.rank() == 4,
           "augment_batch: images must be u8 {{N, H, W, C}}, got {}", to_string(images.shape()));
  const int64_t n = images.dim(0), c = images.dim(3);
  DP_CHECK(crop_yx.dtype() == DType::i32 && crop_yx.shape() == (Shape{n, 2}),
           "augment_batch: crop offsets must be i32 {{{}, 2}}, got {}", n,
           to_string(crop_yx.shape()));
  DP_CHECK(flip.dtype() == DType::u8 && flip.shape() == (Shape{n}),
           "augment_batch: flips must be u8 {{{}}}, got {}", n, to_string(flip.shape()));
  DP_CHECK(spec.pad >= 0, "augment_batch: padding {} is negative", spec.pad);
  DP_CHECK(!spec.reflect || (spec.pad < images.dim(1) && spec.pad < images.dim(2)),
           "augment_batch: reflect padding {} needs images larger than it", spec.pad);
  DP_CHECK(spec.mean.size() == spec.std.size() &&
               (spec.mean.empty() || static_cast<int64_t>(spec.mean.size()) == c),
           "augment_batch: {} mean and {} std values for {} channels", spec.mean.size(),
           spec.std.size(), c);
}

void check_batchnorm_operands(const BatchNormGeometry& g, const Tensor& x,
                              std::initializer_list<const Tensor*> per_channel) {
  DP_CHECK(x.shape() == (Shape{g.n, g.h, g.w, g.c}), "batchnorm input {} does not match geometry",
           to_string(x.shape()));
  for (const Tensor* t : per_channel)
    DP_CHECK(t->numel() == g.c, "batchnorm per-channel tensor {} is not ({})",
             to_string(t->shape()), g.c);
}

void check_subsample_pad_operands(const SubsamplePadGeometry& g, const Tensor& t,
                                  const Shape& shape, const char* op) {
  DP_CHECK(g.stride >= 1 && g.c_in >= 1 && g.c_out >= g.c_in && g.n >= 0 && g.h >= 1 && g.w >= 1,
           "{}: bad geometry {}x{} stride {}, {} -> {} channels", op, g.h, g.w, g.stride, g.c_in,
           g.c_out);
  DP_CHECK(t.shape() == shape, "{}: operand {} does not match the geometry's {}", op,
           to_string(t.shape()), to_string(shape));
}

void check_same_numel(const Tensor& a, const Tensor& b, const char* op) {
  DP_CHECK(a.numel() == b.numel(), "{}: {} vs {}", op, to_string(a.shape()), to_string(b.shape()));
}

void check_f32(const char* op, std::initializer_list<const Tensor*> operands) {
  for (const Tensor* t : operands)
    DP_CHECK(t->dtype() == DType::f32, "{}: operand {} is not f32 (this op has no bf16 kernel)",
             op, to_string(t->shape()));
}

}  // namespace dp
