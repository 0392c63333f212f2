#include "nn/activations.h"

#include "core/error.h"

namespace dp::nn {

const Tensor& Gelu::forward(const Tensor& x, bool train) {
  x_ = train ? x : Tensor();  // see layer.h: an evaluation keeps no input alive
  Tensor& y = y_.shaped(backend_, x.shape(), x.dtype());
  backend_.gelu_forward(x, y);
  return y;
}

Tensor& Gelu::backward(const Tensor& dy) {
  DP_CHECK(x_.defined(), "GELU: backward needs a train-mode forward");
  Tensor& dx = dx_.shaped(backend_, x_.shape(), x_.dtype());
  backend_.gelu_backward(x_, dy, dx);
  return dx;
}

const Tensor& Scale::forward(const Tensor& x, bool /*train*/) {
  Tensor& y = y_.shaped(backend_, x.shape(), x.dtype());
  backend_.scale(x, alpha_, y);
  return y;
}

Tensor& Scale::backward(const Tensor& dy) {
  Tensor& dx = dx_.shaped(backend_, dy.shape(), dy.dtype());
  backend_.scale(dy, alpha_, dx);
  return dx;
}

}  // namespace dp::nn
