#include "nn/residual_blocks.h"

#include "core/error.h"

namespace dp::nn {

// The end of every block: y = relu(main + shortcut); backward gives d(main) = d(shortcut).
const Tensor& ResidualBlock::finish_forward(const Tensor& x, BatchNorm2d& last_bn,
                                            const Tensor& last_bn_input, const Tensor& shortcut,
                                            bool train) {
  x_ = train && mask_input_gradient_ ? x : Tensor();
  Tensor& out = y_.shaped(backend_, last_bn_input.shape(), last_bn_input.dtype());
  last_bn.forward_add_relu(last_bn_input, shortcut, out, train);
  return out;
}

const Tensor& ResidualBlock::start_backward(const Tensor& dy) {
  if (output_gradient_masked_) return dy;
  Tensor& d = dsum_.shaped(backend_, y_.tensor().shape(), dy.dtype());
  backend_.add_relu_backward(y_.tensor(), dy, d);
  return d;
}

void ResidualBlock::finish_backward(const Tensor& shortcut_grad, Tensor& dx) {
  if (!mask_input_gradient_) return backend_.accumulate(shortcut_grad, dx);
  DP_CHECK(x_.defined(), "residual block backward needs a train-mode forward first");
  backend_.accumulate_relu_backward(shortcut_grad, x_, dx);
}

BasicBlock::BasicBlock(ParameterStore& store, const std::string& name, int64_t in_channels,
                       int64_t planes, int64_t stride, BatchNormOptions bn, ShortcutKind shortcut)
    : ResidualBlock(store.backend()),
      conv1_(store, name + ".conv1", in_channels, planes, 3, stride, 1),
      bn1_(store, name + ".bn1", planes, with_relu(bn, true)),
      conv2_(store, name + ".conv2", planes, planes, 3, 1, 1),
      bn2_(store, name + ".bn2", planes, with_relu(bn, false)),
      shortcut_(make_shortcut(shortcut, store, name, in_channels, planes * expansion, stride, bn)) {}

const Tensor& BasicBlock::forward(const Tensor& x, bool train) {
  const Tensor& h = conv2_.forward(bn1_.forward(conv1_.forward(x, train), train), train);
  const Tensor& shortcut = shortcut_ ? shortcut_->forward(x, train) : x;
  return finish_forward(x, bn2_, h, shortcut, train);
}

Tensor& BasicBlock::backward(const Tensor& dy) {
  const Tensor& d = start_backward(dy);
  Tensor& dx = conv1_.backward(bn1_.backward(conv2_.backward(bn2_.backward(d))));
  finish_backward(shortcut_ ? shortcut_->backward(d) : d, dx);
  return dx;
}

Bottleneck::Bottleneck(ParameterStore& store, const std::string& name, int64_t in_channels,
                       int64_t planes, int64_t stride, BatchNormOptions bn)
    : ResidualBlock(store.backend()),
      conv1_(store, name + ".conv1", in_channels, planes, 1, 1, 0),
      bn1_(store, name + ".bn1", planes, with_relu(bn, true)),
      conv2_(store, name + ".conv2", planes, planes, 3, stride, 1),
      bn2_(store, name + ".bn2", planes, with_relu(bn, true)),
      conv3_(store, name + ".conv3", planes, planes * expansion, 1, 1, 0),
      bn3_(store, name + ".bn3", planes * expansion, with_relu(bn, false)),
      shortcut_(make_shortcut(ShortcutKind::B, store, name, in_channels, planes * expansion,
                              stride, bn)) {}

const Tensor& Bottleneck::forward(const Tensor& x, bool train) {
  const Tensor& h1 = bn1_.forward(conv1_.forward(x, train), train);
  const Tensor& h2 = bn2_.forward(conv2_.forward(h1, train), train);
  const Tensor& h3 = conv3_.forward(h2, train);
  const Tensor& shortcut = shortcut_ ? shortcut_->forward(x, train) : x;
  return finish_forward(x, bn3_, h3, shortcut, train);
}

Tensor& Bottleneck::backward(const Tensor& dy) {
  const Tensor& d = start_backward(dy);
  Tensor& dh2 = bn2_.backward(conv3_.backward(bn3_.backward(d)));
  Tensor& dx = conv1_.backward(bn1_.backward(conv2_.backward(dh2)));
  finish_backward(shortcut_ ? shortcut_->backward(d) : d, dx);
  return dx;
}

}  // namespace dp::nn
