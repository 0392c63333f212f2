// torchvision's residual blocks. BasicBlock: 3x3 conv-BN-ReLU, 3x3 conv-BN, + shortcut, ReLU.
// Bottleneck (v1.5, stride on the 3x3): 1x1 conv-BN-ReLU, 3x3 conv-BN-ReLU, 1x1 conv-BN
// (x4 channels), + shortcut, ReLU. The shortcut is the identity, or a 1x1 strided conv + BN
// ("downsample.0" / "downsample.1") when the shape changes. Backward sends the gradient of
// the final add+ReLU into both branches and sums the two input gradients.
#pragma once

#include <memory>
#include <string>

#include "nn/batchnorm2d.h"
#include "nn/conv2d.h"
#include "nn/layer.h"
#include "nn/reusable_buffer.h"

namespace dp::nn {

// The projection shortcut shared by both block kinds.
class Downsample {
 public:
  Downsample(ParameterStore& store, const std::string& block, int64_t in_channels,
             int64_t out_channels, int64_t stride, BatchNormOptions bn);
  const Tensor& forward(const Tensor& x, bool train);
  Tensor& backward(const Tensor& dy);

 private:
  Conv2d conv_;
  BatchNorm2d bn_;
};

class ResidualBlock : public Layer {
 public:
  // The BN whose gamma zero_init_residual sets to 0 (the last one of the main branch).
  virtual const std::string& last_bn_name() const = 0;
};

class BasicBlock : public ResidualBlock {
 public:
  static constexpr int64_t expansion = 1;
  BasicBlock(ParameterStore& store, const std::string& name, int64_t in_channels,
             int64_t planes, int64_t stride, BatchNormOptions bn);
  const Tensor& forward(const Tensor& x, bool train) override;
  Tensor& backward(const Tensor& dy) override;
  const std::string& last_bn_name() const override { return bn2_.name(); }

 private:
  Backend& backend_;
  Conv2d conv1_;
  BatchNorm2d bn1_;
  Conv2d conv2_;
  BatchNorm2d bn2_;
  std::unique_ptr<Downsample> downsample_;
  ReusableBuffer y_, dsum_;
};

class Bottleneck : public ResidualBlock {
 public:
  static constexpr int64_t expansion = 4;
  Bottleneck(ParameterStore& store, const std::string& name, int64_t in_channels,
             int64_t planes, int64_t stride, BatchNormOptions bn);
  const Tensor& forward(const Tensor& x, bool train) override;
  Tensor& backward(const Tensor& dy) override;
  const std::string& last_bn_name() const override { return bn3_.name(); }

 private:
  Backend& backend_;
  Conv2d conv1_;
  BatchNorm2d bn1_;
  Conv2d conv2_;
  BatchNorm2d bn2_;
  Conv2d conv3_;
  BatchNorm2d bn3_;
  std::unique_ptr<Downsample> downsample_;
  ReusableBuffer y_, dsum_;
};

}  // namespace dp::nn
