// Pooling layers: the ImageNet stem's 3x3/2 max pool and the global average pool that
// turns the last feature map {N,H,W,C} into {N,C} for the classifier.
#pragma once

#include "nn/layer.h"
#include "nn/reusable_buffer.h"

namespace dp::nn {

class MaxPool2d : public Layer {
 public:
  MaxPool2d(Backend& backend, int64_t kernel, int64_t stride, int64_t pad)
      : backend_(backend), kernel_(kernel), stride_(stride), pad_(pad) {}
  const Tensor& forward(const Tensor& x, bool train) override;
  Tensor& backward(const Tensor& dy) override;

 private:
  PoolGeometry geometry(const Shape& x) const;
  Backend& backend_;
  int64_t kernel_, stride_, pad_;
  Shape x_shape_;
  ReusableBuffer y_, dx_;
  Tensor workspace_;  // argmax indices, sized by the backend
};

class GlobalAvgPool : public Layer {
 public:
  explicit GlobalAvgPool(Backend& backend) : backend_(backend) {}
  const Tensor& forward(const Tensor& x, bool train) override;
  Tensor& backward(const Tensor& dy) override;

 private:
  Backend& backend_;
  Shape x_shape_;
  ReusableBuffer y_, dx_;
};

}  // namespace dp::nn
