// The gradient with respect to a model's input images, for the models whose first layer is a
// Conv2d (ResNet, Airbench): kept only when asked for, since computing it costs the first
// conv's data backward.
#pragma once

#include "core/error.h"
#include "nn/conv2d.h"

namespace dp::nn {

class InputGradSlot {
 public:
  void set_enabled(bool enabled, Conv2d& first) {
    enabled_ = enabled;
    first.set_input_grad(enabled);
  }
  // Called by every forward: the gradient of the previous batch must not be read as this one's.
  void invalidate() { has_ = false; }
  // Called by backward with the first layer's input gradient (its buffer, viewed, not copied).
  void record(const Tensor& dx) {
    if (enabled_) view_ = dx;
    has_ = enabled_;
  }
  const Tensor& get() const {
    DP_CHECK(has_, "input_grad() needs set_input_grad(true) and a backward pass");
    return view_;
  }

 private:
  bool enabled_ = false;
  bool has_ = false;
  Tensor view_;
};

}  // namespace dp::nn
