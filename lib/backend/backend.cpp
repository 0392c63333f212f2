// Backend's default implementations: the split loss computed at once, and no captured work.
#include "backend/backend.h"

namespace dp {

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

}  // namespace dp
