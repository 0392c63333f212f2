// Backend's default implementations (the split loss computed at once, no captured work).
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

bool Backend::fuses_batchnorm_gelu(const BatchNormGeometry& /*g*/, DType /*dtype*/) const {
  return false;
}

void Backend::batchnorm_gelu_forward_train(const BatchNormGeometry& /*g*/, const Tensor& /*x*/,
                                           const Tensor& /*gamma*/, const Tensor& /*beta*/,
                                           Tensor& /*running_mean*/, Tensor& /*running_var*/,
                                           Tensor& /*y*/, Tensor& /*saved_mean*/,
                                           Tensor& /*saved_var*/) {
  DP_CHECK(false, "{}: no fused batch norm + GELU (check fuses_batchnorm_gelu first)", name());
}

void Backend::batchnorm_gelu_backward(const BatchNormGeometry& /*g*/, const Tensor& /*x*/,
                                      const Tensor& /*dy*/, const Tensor& /*gamma*/,
                                      const Tensor& /*beta*/, const Tensor& /*saved_mean*/,
                                      const Tensor& /*saved_var*/, Tensor& /*dx*/,
                                      Tensor& /*dgamma*/, Tensor& /*dbeta*/) {
  DP_CHECK(false, "{}: no fused batch norm + GELU (check fuses_batchnorm_gelu first)", name());
}

bool Backend::fuses_conv_bias_gelu(const Conv2dGeometry& /*g*/, DType /*x_dtype*/) const {
  return false;
}

void Backend::conv_bias_gelu_forward(const Conv2dGeometry& /*g*/, const Tensor& /*x*/,
                                     const Tensor& /*w*/, const Tensor& /*b*/, Tensor* /*z*/,
                                     Tensor& /*y*/) {
  DP_CHECK(false, "{}: no fused convolution + bias + GELU (check fuses_conv_bias_gelu first)",
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

}  // namespace dp
