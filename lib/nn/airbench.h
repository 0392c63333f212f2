// airbench94 (K. Jordan, "94% on CIFAR-10 in 3.29 Seconds on a Single GPU", 2024), the network
// as the published description gives it; no residuals:
//   whiten: conv 2x2 valid 3->24 with bias, GELU
//   block1..3 (widths 64, 256, 256; airbench95: 128, 384, 384): conv 3x3 same (no bias) ->
//     max pool 2 (floor) -> BN -> GELU -> conv 3x3 same -> BN -> GELU; 32x32 input:
//     31 -> 15 -> 7 -> 3
//   max pool 3 -> flatten -> head: linear 256 (384) ->10 without bias -> logits x 1/9.
// BN: eps 1e-12, PyTorch momentum 0.4, scale fixed at 1 (not trained), shift trained.
// State names as a torch module with attributes whiten, block1..3 (conv1, norm1, conv2, norm2)
// and head would have them: "whiten.weight", "whiten.bias", "block1.conv1.weight",
// "block1.norm1.bias", ..., "head.weight". 1,972,792 parameters (1,152 of them the fixed BN
// scales); 118.1 M multiply-adds per 32x32 image (airbench95: 4,606,520 and 1,792; 301.6 M).
// Init (init_pytorch_dirac): PyTorch's default conv init, then identity (dirac) filters where
// shapes allow; the whitening conv gets the same as a placeholder, which the recipe overwrites
// with filters computed from the training data.
#pragma once

#include <memory>
#include <vector>

#include "nn/activations.h"
#include "nn/batchnorm2d.h"
#include "nn/conv2d.h"
#include "nn/input_grad.h"
#include "nn/linear.h"
#include "nn/model.h"
#include "nn/pooling.h"

namespace dp::nn {

struct AirbenchLayout {
  int64_t whiten_width = 24;  // 2 * 3 * 2 * 2: the recipe's [+W; -W] filters
  std::vector<int64_t> widths = {64, 256, 256};
  float logit_scale = 1.0f / 9.0f;
  BatchNormOptions bn{1e-12f, 0.4f, false, true};
};

// One block: conv1 -> pool -> norm1 -> GELU -> conv2 -> norm2 -> GELU.
class AirbenchBlock {
 public:
  AirbenchBlock(ParameterStore& store, const std::string& name, int64_t in, int64_t out,
                const BatchNormOptions& bn);
  const Tensor& forward(const Tensor& x, bool train);
  Tensor& backward(const Tensor& dy);
  // Whether backward computes the gradient of the block's input (on by default).
  void set_input_grad(bool needed) { conv1_.set_input_grad(needed); }

 private:
  Conv2d conv1_;
  MaxPool2d pool_;
  BatchNorm2d norm1_;
  Gelu act1_;
  Conv2d conv2_;
  BatchNorm2d norm2_;
  Gelu act2_;
};

class Airbench : public Model {
 public:
  Airbench(const ModelSpec& spec, const AirbenchLayout& layout, Backend& backend);
  using Model::forward;
  const Tensor& forward(const Tensor& images, bool train) override;
  void backward(const Tensor& dlogits) override;
  void set_input_grad(bool enabled) override;
  const Tensor& input_grad() const override;

 private:
  std::unique_ptr<Conv2d> whiten_;
  std::unique_ptr<Gelu> whiten_act_;
  std::vector<std::unique_ptr<AirbenchBlock>> blocks_;
  std::unique_ptr<MaxPool2d> pool_;
  std::unique_ptr<Linear> head_;
  std::unique_ptr<Scale> scale_;
  Layout pooled_layout_ = Layout::nhwc;  // the final pool's output layout, for its backward
  Shape pooled_shape_;
  InputGradSlot input_grad_;
};

}  // namespace dp::nn
