// ResNet assembled from a stem, stages of residual blocks, global average pooling and a
// linear classifier; one class serves every arch of the zoo (see model.h).
#pragma once

#include <memory>
#include <vector>

#include "nn/batchnorm2d.h"
#include "nn/conv2d.h"
#include "nn/input_grad.h"
#include "nn/linear.h"
#include "nn/model.h"
#include "nn/pooling.h"
#include "nn/residual_blocks.h"

namespace dp::nn {

enum class BlockKind { basic, bottleneck };
enum class StemKind { imagenet, cifar };

struct ResNetLayout {
  BlockKind block;
  StemKind stem;
  std::vector<int64_t> blocks_per_stage;  // e.g. {2,2,2,2} for resnet18
  std::vector<int64_t> stage_widths;      // planes per stage, e.g. {64,128,256,512}
  ShortcutKind shortcut = ShortcutKind::B;  // of basic blocks; bottlenecks always project
};

class ResNet : public Model {
 public:
  ResNet(const ModelSpec& spec, const ResNetLayout& layout, Backend& backend);
  using Model::forward;
  const Tensor& forward(const Tensor& images, bool train) override;
  void backward(const Tensor& dlogits) override;
  void set_input_grad(bool enabled) override;
  const Tensor& input_grad() const override;

 private:
  std::unique_ptr<Conv2d> conv1_;
  std::unique_ptr<BatchNorm2d> bn1_;
  std::unique_ptr<MaxPool2d> maxpool_;  // ImageNet stem only
  std::vector<std::unique_ptr<ResidualBlock>> blocks_;
  std::unique_ptr<GlobalAvgPool> avgpool_;
  std::unique_ptr<Linear> fc_;
  InputGradSlot input_grad_;
};

}  // namespace dp::nn
