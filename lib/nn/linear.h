// Fully connected layer y = x w^T + b with PyTorch's {out, in} weight ("<name>.weight",
// "<name>.bias"; with bias false y = x w^T and no "<name>.bias"): the classifier head.
#pragma once

#include <optional>
#include <string>

#include "nn/layer.h"
#include "nn/reusable_buffer.h"

namespace dp::nn {

class Linear : public Layer {
 public:
  Linear(ParameterStore& store, const std::string& name, int64_t in_features,
         int64_t out_features, bool bias = true);
  const Tensor& forward(const Tensor& x, bool train) override;
  Tensor& backward(const Tensor& dy) override;

 private:
  ParameterStore& store_;
  ParameterStore::Id weight_;
  std::optional<ParameterStore::Id> bias_;
  int64_t in_features_, out_features_;
  Tensor x_;
  ReusableBuffer y_, dx_;
  Tensor unused_bias_grad_;  // where backward's bias gradient goes without a bias
};

}  // namespace dp::nn
