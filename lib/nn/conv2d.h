// 2-D convolution, square kernel, channels-last activations, PyTorch {O, I, KH, KW} weights
// registered as "<name>.weight"; with `bias`, a per-channel "<name>.bias" {O} (ResNets have
// none; airbench's whitening layer has one).
#pragma once

#include <optional>
#include <string>

#include "nn/layer.h"
#include "nn/reusable_buffer.h"

namespace dp::nn {

class Gelu;

class Conv2d : public Layer {
 public:
  Conv2d(ParameterStore& store, const std::string& name, int64_t in_channels,
         int64_t out_channels, int64_t kernel, int64_t stride, int64_t pad, bool bias = false);
  const Tensor& forward(const Tensor& x, bool train) override;
  Tensor& backward(const Tensor& dy) override;
  // The first layer of a network needs no input gradient; skipping it saves a full pass.
  void set_input_grad(bool needed) { input_grad_ = needed; }
  // For a floor-mode 2x2 stride-2 max pool that is this layer's only reader, which never reads
  // an odd output map's last row and column: the convolution leaves them out
  // (Conv2dGeometry::trim; the output is then a row and a column smaller) where the backend
  // supports it and the map is odd both ways. The rows and columns kept hold the same values;
  // the pool's output is unchanged. Multiply-adds are still counted for the whole map.
  void set_feeds_floor_pool2(bool feeds) { feeds_floor_pool2_ = feeds; }
  // Whether backward has anything to compute: the input gradient, or a parameter's that
  // requires one (ParameterStore::requires_grad). Backward skips the convolution itself when
  // only the bias needs its gradient.
  bool needs_backward() const;
  // Backward when nothing needs it, or nothing below: every parameter's gradient written as
  // 0 (ParameterStore::report_grad).
  void skip_backward();
  int64_t out_channels() const { return out_channels_; }

  // act.forward(forward(x)) for a convolution with bias and the GELU after it: one backend op
  // where the backend fuses the three (Backend::fuses_conv_bias_gelu), which then keeps the
  // GELU's input only for a training step whose backward needs it (a backward after all
  // recomputes it); else the two layers in turn.
  // backward_gelu takes the GELU output's gradient and follows the route the last forward_gelu
  // took.
  const Tensor& forward_gelu(const Tensor& x, Gelu& act, bool train);
  Tensor& backward_gelu(const Tensor& dy, Gelu& act);

 private:
  Conv2dGeometry geometry(const Tensor& x) const;
  // Of one pass: the forward, the data gradient or the weight gradient; of the untrimmed map
  // (the network's count, as PyTorch computes it, whatever the backend skips).
  static int64_t macs(const Conv2dGeometry& g);

  ParameterStore& store_;
  ParameterStore::Id weight_;
  std::optional<ParameterStore::Id> bias_;
  int64_t in_channels_, out_channels_, kernel_, stride_, pad_;
  bool input_grad_ = true;
  bool feeds_floor_pool2_ = false;
  bool gelu_fused_ = false;       // the last forward_gelu ran the fused op: so does backward_gelu
  bool gelu_input_kept_ = false;  // ... and kept the GELU's input (conv + bias) in y_
  Tensor x_;                      // handle to the input, kept for backward
  ReusableBuffer y_, dx_, activated_, dz_;  // activated_: the fused GELU's output
};

}  // namespace dp::nn
