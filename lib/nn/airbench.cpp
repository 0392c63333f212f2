#include "nn/airbench.h"

#include "core/error.h"
#include "nn/init.h"

namespace dp::nn {

AirbenchBlock::AirbenchBlock(ParameterStore& store, const std::string& name, int64_t in,
                             int64_t out, const BatchNormOptions& bn)
    : conv1_(store, name + ".conv1", in, out, 3, 1, 1),
      pool_(store.backend(), 2, 2, 0),
      norm1_(store, name + ".norm1", out, bn),
      act1_(store.backend()),
      conv2_(store, name + ".conv2", out, out, 3, 1, 1),
      norm2_(store, name + ".norm2", out, bn),
      act2_(store.backend()) {
  conv1_.set_feeds_floor_pool2(true);
}

const Tensor& AirbenchBlock::forward(const Tensor& x, bool train) {
  const Tensor& h =
      norm1_.forward_gelu(pool_.forward(conv1_.forward(x, train), train), act1_, train);
  return norm2_.forward_gelu(conv2_.forward(h, train), act2_, train);
}

Tensor& AirbenchBlock::backward(const Tensor& dy) {
  Tensor& dh = conv2_.backward(norm2_.backward_gelu(dy, act2_));
  return conv1_.backward(pool_.backward(norm1_.backward_gelu(dh, act1_)));
}

Airbench::Airbench(const ModelSpec& spec, const AirbenchLayout& layout, Backend& backend)
    : Model(spec, backend) {
  ParameterStore& store = *store_;
  // Registration order is the torch module's attribute order: state_dict order.
  whiten_ = std::make_unique<Conv2d>(store, "whiten", spec.in_channels, layout.whiten_width, 2,
                                     1, 0, /*bias=*/true);
  whiten_->set_input_grad(false);
  whiten_act_ = std::make_unique<Gelu>(backend);
  int64_t in = layout.whiten_width;
  for (size_t b = 0; b < layout.widths.size(); ++b) {
    blocks_.push_back(std::make_unique<AirbenchBlock>(store, "block" + std::to_string(b + 1), in,
                                                      layout.widths[b], layout.bn));
    in = layout.widths[b];
  }
  pool_ = std::make_unique<MaxPool2d>(backend, 3, 3, 0);
  head_ = std::make_unique<Linear>(store, "head", in, spec.num_classes, /*bias=*/false);
  scale_ = std::make_unique<Scale>(backend, layout.logit_scale);
  store.finalize();
  init_pytorch_dirac(store, spec.seed);
}

const Tensor& Airbench::forward(const Tensor& images, bool train) {
  check_images(images);
  input_grad_.invalidate();
  const Tensor* h = &whiten_->forward_gelu(images, *whiten_act_, train);
  for (auto& block : blocks_) h = &block->forward(*h, train);
  const Tensor& pooled = pool_->forward(*h, train);
  // Flatten needs a 1x1 map (32x32 images give 3x3 -> 1x1); there nChw16c and NHWC hold the
  // same bytes, so the {N, C} view reads either layout.
  DP_CHECK(pooled.dim(1) == 1 && pooled.dim(2) == 1,
           "airbench: the last feature map is {}x{} after the final pool, not 1x1 (input {})",
           pooled.dim(1), pooled.dim(2), to_string(images.shape()));
  pooled_layout_ = pooled.layout();
  pooled_shape_ = pooled.shape();
  Tensor flat = pooled;
  flat.set_layout(Layout::nhwc);
  flat = flat.reshaped({pooled.dim(0), pooled.dim(3)});
  return scale_->forward(head_->forward(flat, train), train);
}

void Airbench::backward(const Tensor& dlogits) {
  // As autograd prunes: while the whitening layer needs no gradient (its weight is frozen for
  // the whole recipe, its bias after 3 epochs) and no input gradient was asked for, nothing
  // below block1 needs one, so its data gradient, the whitening GELU's and the whitening
  // conv's backward are skipped.
  const bool whiten_backward = whiten_->needs_backward();
  blocks_.front()->set_input_grad(whiten_backward);
  Tensor dflat = head_->backward(scale_->backward(dlogits)).reshaped(pooled_shape_);
  // The pool's backward picks its primitive by dy's layout: the one its forward wrote.
  dflat.set_layout(pooled_layout_);
  Tensor* d = &pool_->backward(dflat);
  for (auto it = blocks_.rbegin(); it != blocks_.rend(); ++it) d = &(*it)->backward(*d);
  if (!whiten_backward) return whiten_->skip_backward();
  Tensor& dx = whiten_->backward_gelu(*d, *whiten_act_);
  input_grad_.record(dx);
}

void Airbench::set_input_grad(bool enabled) {
  input_grad_.set_enabled(enabled, *whiten_);
}

const Tensor& Airbench::input_grad() const {
  return input_grad_.get();
}

}  // namespace dp::nn
