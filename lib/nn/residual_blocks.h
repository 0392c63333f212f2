// torchvision's residual blocks. BasicBlock: 3x3 conv-BN-ReLU, 3x3 conv-BN, + shortcut, ReLU.
// Bottleneck (v1.5, stride on the 3x3): 1x1 conv-BN-ReLU, 3x3 conv-BN-ReLU, 1x1 conv-BN
// (x4 channels), + shortcut, ReLU. The shortcut is the identity, or where the shape changes
// one of shortcuts.h: a 1x1 strided conv + BN ("downsample.0" / "downsample.1", option B; the
// only one for bottlenecks) or, for basic blocks, the parameter-free subsample + zero channels
// (option A). Backward sends the gradient of the final add+ReLU into both branches and sums the
// two input gradients.
//
// Inside a ResNet every block's input is a ReLU output (the stem's, or the previous block's),
// and each ReLU mask costs a pass over the activation gradient of its own. With
// fuse_relu_masks, a block applies the mask of its input's ReLU in the pass that sums its two
// branch gradients (Backend::accumulate_relu_backward), and the block before it skips its own
// mask (its output gradient arrives masked). Same arithmetic, bit for bit, one pass fewer.
#pragma once

#include <memory>
#include <string>

#include "nn/batchnorm2d.h"
#include "nn/conv2d.h"
#include "nn/layer.h"
#include "nn/reusable_buffer.h"
#include "nn/shortcuts.h"

namespace dp::nn {

class ResidualBlock : public Layer {
 public:
  // The BN whose gamma zero_init_residual sets to 0 (the last one of the main branch).
  virtual const std::string& last_bn_name() const = 0;
  // mask_input_gradient: backward returns dL/dx * (x > 0), for an input that a ReLU made;
  // output_gradient_masked: backward's dy is already dL/dy * (y > 0) (the next block masked it).
  void fuse_relu_masks(bool mask_input_gradient, bool output_gradient_masked) {
    mask_input_gradient_ = mask_input_gradient;
    output_gradient_masked_ = output_gradient_masked;
  }

 protected:
  explicit ResidualBlock(Backend& backend) : backend_(backend) {}
  // y = relu(last_bn(last_bn_input) + shortcut), into y_ (and x is kept for the input mask).
  const Tensor& finish_forward(const Tensor& x, BatchNorm2d& last_bn, const Tensor& last_bn_input,
                               const Tensor& shortcut, bool train);
  // The gradient reaching both branches: dy masked by y > 0, unless it arrived masked.
  const Tensor& start_backward(const Tensor& dy);
  // dx += shortcut_grad, masked by x > 0 where mask_input_gradient.
  void finish_backward(const Tensor& shortcut_grad, Tensor& dx);

  Backend& backend_;

 private:
  ReusableBuffer y_, dsum_;
  Tensor x_;  // the input of the last train-mode forward, for its ReLU mask
  bool mask_input_gradient_ = false;
  bool output_gradient_masked_ = false;
};

class BasicBlock : public ResidualBlock {
 public:
  static constexpr int64_t expansion = 1;
  // shortcut: A or B, used only where the shape changes.
  BasicBlock(ParameterStore& store, const std::string& name, int64_t in_channels, int64_t planes,
             int64_t stride, BatchNormOptions bn, ShortcutKind shortcut);
  const Tensor& forward(const Tensor& x, bool train) override;
  Tensor& backward(const Tensor& dy) override;
  const std::string& last_bn_name() const override { return bn2_.name(); }

 private:
  Conv2d conv1_;
  BatchNorm2d bn1_;
  Conv2d conv2_;
  BatchNorm2d bn2_;
  std::unique_ptr<Shortcut> shortcut_;  // null: the identity
};

class Bottleneck : public ResidualBlock {
 public:
  static constexpr int64_t expansion = 4;
  Bottleneck(ParameterStore& store, const std::string& name, int64_t in_channels, int64_t planes,
             int64_t stride, BatchNormOptions bn);
  const Tensor& forward(const Tensor& x, bool train) override;
  Tensor& backward(const Tensor& dy) override;
  const std::string& last_bn_name() const override { return bn3_.name(); }

 private:
  Conv2d conv1_;
  BatchNorm2d bn1_;
  Conv2d conv2_;
  BatchNorm2d bn2_;
  Conv2d conv3_;
  BatchNorm2d bn3_;
  std::unique_ptr<Shortcut> shortcut_;  // null: the identity
};

}  // namespace dp::nn
