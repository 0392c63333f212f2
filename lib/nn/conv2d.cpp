#include "nn/conv2d.h"

#include "core/error.h"
#include "nn/activations.h"

namespace dp::nn {

Conv2d::Conv2d(ParameterStore& store, const std::string& name, int64_t in_channels,
               int64_t out_channels, int64_t kernel, int64_t stride, int64_t pad, bool bias)
    : store_(store),
      weight_(store.add_parameter(name + ".weight", {out_channels, in_channels, kernel, kernel},
                                  ParamRole::conv_weight)),
      in_channels_(in_channels),
      out_channels_(out_channels),
      kernel_(kernel),
      stride_(stride),
      pad_(pad) {
  if (bias) bias_ = store.add_parameter(name + ".bias", {out_channels}, ParamRole::conv_bias);
}

Conv2dGeometry Conv2d::geometry(const Tensor& x) const {
  DP_CHECK(x.rank() == 4 && x.dim(3) == in_channels_, "conv '{}' expects {{N,H,W,{}}}, got {}",
           store_.entry(weight_).name, in_channels_, to_string(x.shape()));
  const Conv2dGeometry same{x.dim(0),      x.dim(1), x.dim(2), in_channels_,
                            out_channels_, kernel_,  stride_,  pad_};
  if (!feeds_floor_pool2_ || !store_.backend().supports_conv_trim()) return same;
  Conv2dGeometry trimmed = same;
  trimmed.trim = 1;
  const bool odd_map =
      same.out_h() % 2 == 1 && same.out_w() % 2 == 1 && same.out_h() > 1 && same.out_w() > 1;
  const bool one_less = trimmed.out_h() == same.out_h() - 1 && trimmed.out_w() == same.out_w() - 1;
  return odd_map && one_less && trimmed.pad_after() >= 0 ? trimmed : same;
}

int64_t Conv2d::macs(const Conv2dGeometry& g) {
  Conv2dGeometry whole = g;
  whole.trim = 0;
  return g.n * whole.out_h() * whole.out_w() * g.c_out * g.c_in * g.kernel * g.kernel;
}

const Tensor& Conv2d::forward(const Tensor& x, bool train) {
  Conv2dGeometry g = geometry(x);
  x_ = train ? x : Tensor();  // see layer.h: an evaluation keeps no input alive
  gelu_fused_ = false;
  Backend& be = store_.backend();
  Tensor& y = y_.shaped(be, {g.n, g.out_h(), g.out_w(), g.c_out}, be.activation_dtype());
  be.conv2d_forward(g, x, store_.param(weight_), y);
  if (bias_) be.channel_bias_forward(store_.param(*bias_), y);
  store_.count_forward_macs(macs(g));
  return y;
}

const Tensor& Conv2d::forward_gelu(const Tensor& x, Gelu& act, bool train) {
  Conv2dGeometry g = geometry(x);
  Backend& be = store_.backend();
  if (!bias_ || !be.fuses_conv_bias_gelu(g, x.dtype()))
    return act.forward(forward(x, train), train);
  x_ = train ? x : Tensor();
  gelu_fused_ = true;
  // Decided per step: the whitening bias stops needing a gradient when it freezes.
  gelu_input_kept_ = train && needs_backward();
  const Shape out{g.n, g.out_h(), g.out_w(), g.c_out};
  Tensor& y = activated_.shaped(be, out, be.activation_dtype());
  Tensor* z = gelu_input_kept_ ? &y_.shaped(be, out, be.activation_dtype()) : nullptr;
  be.conv_bias_gelu_forward(g, x, store_.param(weight_), store_.param(*bias_), z, y);
  store_.count_forward_macs(macs(g));
  return y;
}

Tensor& Conv2d::backward_gelu(const Tensor& dy, Gelu& act) {
  if (!gelu_fused_) return backward(act.backward(dy));
  DP_CHECK(x_.defined(), "conv '{}': backward needs a train-mode forward",
           store_.entry(weight_).name);
  Backend& be = store_.backend();
  const Conv2dGeometry g = geometry(x_);
  const Shape out{g.n, g.out_h(), g.out_w(), g.c_out};
  Tensor& dz = dz_.shaped(be, out, be.activation_dtype());
  // A forward that foresaw no backward (nothing required a gradient then) kept no z: rebuilt
  // here, the GELU's output going to dz, which gelu_backward then overwrites.
  if (!gelu_input_kept_)
    be.conv_bias_gelu_forward(g, x_, store_.param(weight_), store_.param(*bias_),
                              &y_.shaped(be, out, be.activation_dtype()), dz);
  gelu_input_kept_ = true;
  be.gelu_backward(y_.tensor(), dy, dz);
  return backward(dz);
}

Tensor& Conv2d::backward(const Tensor& dy) {
  DP_CHECK(x_.defined(), "conv '{}': backward needs a train-mode forward",
           store_.entry(weight_).name);
  Conv2dGeometry g = geometry(x_);
  Backend& be = store_.backend();
  Tensor* dx = input_grad_ ? &dx_.shaped(be, x_.shape(), be.activation_dtype()) : nullptr;
  // The backends compute the weight gradient with every call; a frozen weight's is then
  // overwritten by 0 (report_grad).
  if (dx || store_.requires_grad(weight_)) {
    be.conv2d_backward(g, x_, store_.param(weight_), dy, dx, store_.grad(weight_));
    store_.count_backward_macs(macs(g) * (dx ? 2 : 1));
  }
  store_.report_grad(weight_);
  if (bias_) {
    if (store_.requires_grad(*bias_)) be.channel_bias_backward(dy, store_.grad(*bias_));
    store_.report_grad(*bias_);
  }
  return dx ? *dx : dx_.tensor();
}

bool Conv2d::needs_backward() const {
  return input_grad_ || store_.requires_grad(weight_) ||
         (bias_ && store_.requires_grad(*bias_));
}

void Conv2d::skip_backward() {
  store_.report_grad(weight_);  // none requires a gradient: each reads 0
  if (bias_) store_.report_grad(*bias_);
}

}  // namespace dp::nn
