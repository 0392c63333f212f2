// Parameter-free elementwise layers: GELU (erf form, torch.nn.GELU()) and a constant scale
// (y = alpha * x, e.g. airbench's logits x 1/9). Outputs keep the input's shape and type.
#pragma once

#include "nn/layer.h"
#include "nn/reusable_buffer.h"

namespace dp::nn {

class Gelu : public Layer {
 public:
  explicit Gelu(Backend& backend) : backend_(backend) {}
  const Tensor& forward(const Tensor& x, bool train) override;
  // Needs the forward's input (kept as a handle, as a convolution keeps its own).
  Tensor& backward(const Tensor& dy) override;

 private:
  Backend& backend_;
  Tensor x_;
  ReusableBuffer y_, dx_;
};

class Scale : public Layer {
 public:
  Scale(Backend& backend, float alpha) : backend_(backend), alpha_(alpha) {}
  const Tensor& forward(const Tensor& x, bool train) override;
  Tensor& backward(const Tensor& dy) override;
  float alpha() const { return alpha_; }

 private:
  Backend& backend_;
  float alpha_;
  ReusableBuffer y_, dx_;
};

}  // namespace dp::nn
