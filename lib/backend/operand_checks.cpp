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

void check_conv_operands(const Conv2dGeometry& g, const Tensor& x, const Tensor& w,
                         const Tensor* dy) {
  DP_CHECK(g.n > 0 && g.kernel > 0 && g.stride > 0 && g.pad >= 0 && g.pad_after() >= 0 &&
               g.out_h() > 0 && g.out_w() > 0,
           "bad conv geometry k={} s={} p={} trim={} on {}x{}", g.kernel, g.stride, g.pad, g.trim,
           g.h, g.w);
  DP_CHECK(x.shape() == (Shape{g.n, g.h, g.w, g.c_in}), "conv input {} does not match geometry",
           to_string(x.shape()));
  DP_CHECK(w.shape() == (Shape{g.c_out, g.c_in, g.kernel, g.kernel}),
           "conv weight {} does not match geometry", to_string(w.shape()));
  if (dy)
    DP_CHECK(dy->shape() == (Shape{g.n, g.out_h(), g.out_w(), g.c_out}),
             "conv output gradient {} does not match geometry", to_string(dy->shape()));
}

namespace {

void check_pool_geometry(const PoolGeometry& g, const char* op) {
  DP_CHECK(g.kernel > 0 && g.stride > 0 && g.pad >= 0 && 2 * g.pad <= g.kernel && g.out_h() > 0 &&
               g.out_w() > 0,
           "{}: bad pooling geometry k={} s={} p={} on {}x{}", op, g.kernel, g.stride, g.pad, g.h,
           g.w);
}

void check_subsample_pad_geometry(const SubsamplePadGeometry& g, const char* op) {
  DP_CHECK(g.stride >= 1 && g.c_in >= 1 && g.c_out >= g.c_in && g.n >= 0 && g.h >= 1 && g.w >= 1,
           "{}: bad geometry {}x{} stride {}, {} -> {} channels", op, g.h, g.w, g.stride, g.c_in,
           g.c_out);
}

// `t` has the shape its op's geometry gives it (checked valid first).
void check_geometry_shape(const Tensor& t, const Shape& shape, const char* op) {
  DP_CHECK(t.shape() == shape, "{}: operand {} does not match the geometry's {}", op,
           to_string(t.shape()), to_string(shape));
}

}  // namespace

void check_pool_input(const PoolGeometry& g, const Tensor& x, const char* op) {
  check_pool_geometry(g, op);
  check_geometry_shape(x, {g.n, g.h, g.w, g.c}, op);
}

void check_pool_output_gradient(const PoolGeometry& g, const Tensor& dy, const char* op) {
  check_pool_geometry(g, op);
  check_geometry_shape(dy, {g.n, g.out_h(), g.out_w(), g.c}, op);
}

void check_global_avgpool_forward(const Tensor& x) {
  DP_CHECK(x.rank() == 4, "global_avgpool_forward expects NHWC, got {}", to_string(x.shape()));
}

void check_global_avgpool_backward(const Tensor& dy, const Tensor& dx) {
  DP_CHECK(dx.rank() == 4 && dy.numel() == dx.dim(0) * dx.dim(3),
           "global_avgpool_backward: dx {} must be allocated NHWC for dy {}", to_string(dx.shape()),
           to_string(dy.shape()));
}

void check_loss_operands(const Tensor& logits, const Tensor& labels) {
  DP_CHECK(logits.rank() == 2 && labels.dtype() == DType::i32 && labels.numel() == logits.dim(0),
           "softmax_cross_entropy: logits {} labels {}", to_string(logits.shape()),
           to_string(labels.shape()));
}

void check_batchnorm_operands(const BatchNormGeometry& g, const Tensor& x,
                              std::initializer_list<const Tensor*> per_channel) {
  DP_CHECK(x.shape() == (Shape{g.n, g.h, g.w, g.c}), "batchnorm input {} does not match geometry",
           to_string(x.shape()));
  for (const Tensor* t : per_channel)
    DP_CHECK(t->numel() == g.c, "batchnorm per-channel tensor {} is not ({})",
             to_string(t->shape()), g.c);
}

void check_subsample_pad_input(const SubsamplePadGeometry& g, const Tensor& x, const char* op) {
  check_subsample_pad_geometry(g, op);
  check_geometry_shape(x, {g.n, g.h, g.w, g.c_in}, op);
}

void check_subsample_pad_output_gradient(const SubsamplePadGeometry& g, const Tensor& dy,
                                         const char* op) {
  check_subsample_pad_geometry(g, op);
  check_geometry_shape(dy, {g.n, g.out_h(), g.out_w(), g.c_out}, op);
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
