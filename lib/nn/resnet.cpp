#include "nn/resnet.h"

#include "core/error.h"
#include "nn/init.h"

namespace dp::nn {

ResNet::ResNet(const ModelSpec& spec, const ResNetLayout& layout, Backend& backend)
    : Model(spec, backend) {
  ParameterStore& store = *store_;
  BatchNormOptions bn{spec.bn_eps, spec.bn_momentum, false};
  BatchNormOptions bn_relu{spec.bn_eps, spec.bn_momentum, true};
  int64_t width = layout.stage_widths.at(0);

  // Registration order follows torchvision's module order, so entries() is state_dict order.
  if (layout.stem == StemKind::imagenet) {
    conv1_ = std::make_unique<Conv2d>(store, "conv1", spec.in_channels, width, 7, 2, 3);
  } else {
    conv1_ = std::make_unique<Conv2d>(store, "conv1", spec.in_channels, width, 3, 1, 1);
  }
  conv1_->set_input_grad(false);
  bn1_ = std::make_unique<BatchNorm2d>(store, "bn1", width, bn_relu);
  if (layout.stem == StemKind::imagenet) maxpool_ = std::make_unique<MaxPool2d>(backend, 3, 2, 1);

  int64_t expansion = layout.block == BlockKind::basic ? BasicBlock::expansion
                                                       : Bottleneck::expansion;
  int64_t in_channels = width;
  for (size_t stage = 0; stage < layout.blocks_per_stage.size(); ++stage) {
    int64_t planes = layout.stage_widths.at(stage);
    for (int64_t b = 0; b < layout.blocks_per_stage[stage]; ++b) {
      std::string name = "layer" + std::to_string(stage + 1) + "." + std::to_string(b);
      int64_t stride = (stage > 0 && b == 0) ? 2 : 1;
      if (layout.block == BlockKind::basic)
        blocks_.push_back(std::make_unique<BasicBlock>(store, name, in_channels, planes, stride, bn,
                                                       layout.shortcut));
      else
        blocks_.push_back(std::make_unique<Bottleneck>(store, name, in_channels, planes, stride, bn));
      in_channels = planes * expansion;
    }
  }
  // Every block's input comes out of a ReLU (the stem's, through the max-pool where there is
  // one, which keeps zeros zero, or the previous block's), so each block masks its input
  // gradient and all but the last receive theirs masked (residual_blocks.h).
  for (size_t i = 0; i < blocks_.size(); ++i)
    blocks_[i]->fuse_relu_masks(true, i + 1 < blocks_.size());
  avgpool_ = std::make_unique<GlobalAvgPool>(backend);
  fc_ = std::make_unique<Linear>(store, "fc", in_channels, spec.num_classes);

  store.finalize();
  std::vector<std::string> zero_gamma;
  if (spec.zero_init_residual)
    for (const auto& block : blocks_) zero_gamma.push_back(block->last_bn_name() + ".weight");
  init_torchvision(store, spec.seed, zero_gamma);
}

const Tensor& ResNet::forward(const Tensor& images, bool train) {
  check_images(images);
  input_grad_.invalidate();
  const Tensor* h = &bn1_->forward(conv1_->forward(images, train), train);
  if (maxpool_) h = &maxpool_->forward(*h, train);
  for (auto& block : blocks_) h = &block->forward(*h, train);
  return fc_->forward(avgpool_->forward(*h, train), train);
}

void ResNet::backward(const Tensor& dlogits) {
  Tensor* d = &avgpool_->backward(fc_->backward(dlogits));
  for (auto it = blocks_.rbegin(); it != blocks_.rend(); ++it) d = &(*it)->backward(*d);
  if (maxpool_) d = &maxpool_->backward(*d);
  Tensor& dx = conv1_->backward(bn1_->backward(*d));
  input_grad_.record(dx);
}

void ResNet::set_input_grad(bool enabled) {
  input_grad_.set_enabled(enabled, *conv1_);
}

const Tensor& ResNet::input_grad() const {
  return input_grad_.get();
}

}  // namespace dp::nn
