// 2-D convolution, square kernel, channels-last activations, PyTorch {O, I, KH, KW} weights
// registered as "<name>.weight"; with `bias`, a per-channel "<name>.bias" {O} (ResNets have
// none; airbench's whitening layer has one).
#pragma once

#include <optional>
#include <string>

#include "nn/layer.h"
#include "nn/reusable_buffer.h"

namespace dp::nn {

class Conv2d : public Layer {
 public:
  Conv2d(ParameterStore& store, const std::string& name, int64_t in_channels,
         int64_t out_channels, int64_t kernel, int64_t stride, int64_t pad, bool bias = false);
  const Tensor& forward(const Tensor& x, bool train) override;
  Tensor& backward(const Tensor& dy) override;
  // The first layer of a network needs no input gradient; skipping it saves a full pass.
  void set_input_grad(bool needed) { input_grad_ = needed; }
  // Whether backward has anything to compute: the input gradient, or a parameter's that
  // requires one (ParameterStore::requires_grad). Backward skips the convolution itself when
  // only the bias needs its gradient.
  bool needs_backward() const;
  // Backward when nothing needs it, or nothing below: every parameter's gradient written as
  // 0 (ParameterStore::report_grad).
  void skip_backward();
  int64_t out_channels() const { return out_channels_; }

 private:
  Conv2dGeometry geometry(const Tensor& x) const;
  // Of one pass: the forward, the data gradient or the weight gradient.
  static int64_t macs(const Conv2dGeometry& g);

  ParameterStore& store_;
  ParameterStore::Id weight_;
  std::optional<ParameterStore::Id> bias_;
  int64_t in_channels_, out_channels_, kernel_, stride_, pad_;
  bool input_grad_ = true;
  Tensor x_;  // handle to the input, kept for backward
  ReusableBuffer y_, dx_;
};

}  // namespace dp::nn
