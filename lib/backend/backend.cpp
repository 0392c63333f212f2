// Backend's default implementations (the split loss computed at once, no captured work) and
// the operand checks every implementation shares.
#include "backend/backend.h"

#include "core/error.h"

namespace dp {

void Backend::accumulate_relu_backward(const Tensor& x, const Tensor& relu_output, Tensor& y) {
  accumulate(x, y);
  relu_backward(relu_output, y, y);
}

bool Backend::fuses_batchnorm_add_relu(const BatchNormGeometry& /*g*/) const { return false; }

void Backend::batchnorm_add_relu_forward_train(const BatchNormGeometry& /*g*/, const Tensor& /*x*/,
                                               const Tensor& /*gamma*/, const Tensor& /*beta*/,
                                               Tensor& /*running_mean*/, Tensor& /*running_var*/,
                                               const Tensor& /*residual*/, Tensor& /*y*/,
                                               Tensor& /*saved_mean*/, Tensor& /*saved_var*/,
                                               Tensor& /*workspace*/) {
  DP_CHECK(false, "{}: no fused batch norm + add + ReLU (check fuses_batchnorm_add_relu first)",
           name());
}

void Backend::queue_softmax_cross_entropy(const Tensor& logits, const Tensor& labels,
                                          float label_smoothing, Tensor& dlogits) {
  queued_loss_ = softmax_cross_entropy(logits, labels, label_smoothing, dlogits, queued_correct_);
}

float Backend::read_queued_loss(const Tensor& /*logits*/, const Tensor& /*labels*/,
                                int64_t& correct) {
  correct = queued_correct_;
  return queued_loss_;
}

std::unique_ptr<CapturedWork> Backend::capture(const std::function<void()>& /*work*/) {
  return nullptr;
}

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
  DP_CHECK(spec.mean.size() == spec.std.size() &&
               (spec.mean.empty() || static_cast<int64_t>(spec.mean.size()) == c),
           "augment_batch: {} mean and {} std values for {} channels", spec.mean.size(),
           spec.std.size(), c);
}

}  // namespace dp
