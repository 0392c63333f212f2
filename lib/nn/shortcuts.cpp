#include "nn/shortcuts.h"

#include "core/error.h"

namespace dp::nn {

Projection::Projection(ParameterStore& store, const std::string& block, int64_t in_channels,
                       int64_t out_channels, int64_t stride, BatchNormOptions bn)
    : conv_(store, block + ".downsample.0", in_channels, out_channels, 1, stride, 0),
      bn_(store, block + ".downsample.1", out_channels, with_relu(bn, false)) {}

const Tensor& Projection::forward(const Tensor& x, bool train) {
  return bn_.forward(conv_.forward(x, train), train);
}

Tensor& Projection::backward(const Tensor& dy) { return conv_.backward(bn_.backward(dy)); }

SubsamplePad::SubsamplePad(Backend& backend, int64_t out_channels, int64_t stride)
    : backend_(backend), out_channels_(out_channels), stride_(stride) {}

SubsamplePadGeometry SubsamplePad::geometry(const Shape& x) const {
  DP_CHECK(x.size() == 4, "option-A shortcut expects {{N,H,W,C}}, got {}", to_string(x));
  return {x[0], x[1], x[2], x[3], out_channels_, stride_};
}

const Tensor& SubsamplePad::forward(const Tensor& x, bool /*train*/) {
  const SubsamplePadGeometry g = geometry(x.shape());
  x_shape_ = x.shape();  // a shape, not a handle: evaluation keeps no input alive (layer.h)
  Tensor& y = y_.shaped(backend_, {g.n, g.out_h(), g.out_w(), g.c_out}, x.dtype());
  backend_.subsample_pad_forward(g, x, y);
  return y;
}

Tensor& SubsamplePad::backward(const Tensor& dy) {
  DP_CHECK(!x_shape_.empty(), "option-A shortcut backward needs a forward first");
  const SubsamplePadGeometry g = geometry(x_shape_);
  Tensor& dx = dx_.shaped(backend_, x_shape_, dy.dtype());
  backend_.subsample_pad_backward(g, dy, dx);
  return dx;
}

std::unique_ptr<Shortcut> make_shortcut(ShortcutKind kind, ParameterStore& store,
                                        const std::string& block, int64_t in_channels,
                                        int64_t out_channels, int64_t stride, BatchNormOptions bn) {
  if (stride == 1 && in_channels == out_channels) return nullptr;
  DP_CHECK(kind != ShortcutKind::arch_default, "block {}: shortcut kind not resolved", block);
  if (kind == ShortcutKind::B)
    return std::make_unique<Projection>(store, block, in_channels, out_channels, stride, bn);
  // Option A can only add channels: zero padding cannot drop any.
  DP_CHECK(out_channels >= in_channels, "block {}: an option-A shortcut cannot narrow {} to {} "
           "channels", block, in_channels, out_channels);
  return std::make_unique<SubsamplePad>(store.backend(), out_channels, stride);
}

}  // namespace dp::nn
