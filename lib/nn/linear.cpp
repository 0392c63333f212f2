#include "nn/linear.h"

#include "core/error.h"

namespace dp::nn {

Linear::Linear(ParameterStore& store, const std::string& name, int64_t in_features,
               int64_t out_features, bool bias)
    : store_(store),
      weight_(store.add_parameter(name + ".weight", {out_features, in_features},
                                  ParamRole::linear_weight)),
      in_features_(in_features),
      out_features_(out_features) {
  if (bias) bias_ = store.add_parameter(name + ".bias", {out_features}, ParamRole::linear_bias);
}

const Tensor& Linear::forward(const Tensor& x, bool train) {
  DP_CHECK(x.rank() == 2 && x.dim(1) == in_features_, "linear expects {{N,{}}}, got {}",
           in_features_, to_string(x.shape()));
  x_ = train ? x : Tensor();  // see layer.h: an evaluation keeps no input alive
  Tensor& y = y_.shaped(store_.backend(), {x.dim(0), out_features_});  // logits: f32
  store_.backend().linear_forward(x, store_.param(weight_),
                                  bias_ ? store_.param(*bias_) : Tensor(), y);
  store_.count_forward_macs(x.dim(0) * in_features_ * out_features_);
  return y;
}

Tensor& Linear::backward(const Tensor& dy) {
  DP_CHECK(x_.defined(), "linear '{}': backward needs a train-mode forward",
           store_.entry(weight_).name);
  Tensor& dx = dx_.shaped(store_.backend(), x_.shape(), x_.dtype());
  store_.backend().linear_backward(x_, store_.param(weight_), dy, dx, store_.grad(weight_),
                                   bias_ ? store_.grad(*bias_) : unused_bias_grad_);
  store_.count_backward_macs(2 * x_.dim(0) * in_features_ * out_features_);
  store_.report_grad(weight_);
  if (bias_) store_.report_grad(*bias_);
  return dx;
}

}  // namespace dp::nn
