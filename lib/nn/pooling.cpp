#include "nn/pooling.h"

#include "core/error.h"

namespace dp::nn {

PoolGeometry MaxPool2d::geometry(const Shape& x) const {
  DP_CHECK(x.size() == 4, "max pool expects {{N,H,W,C}}, got {}", to_string(x));
  DP_CHECK(x[1] + 2 * pad_ >= kernel_ && x[2] + 2 * pad_ >= kernel_,
           "max pool {}x{}: its input {} is smaller than its window", kernel_, kernel_,
           to_string(x));
  return PoolGeometry{x[0], x[1], x[2], x[3], kernel_, stride_, pad_};
}

const Tensor& MaxPool2d::forward(const Tensor& x, bool /*train*/) {
  PoolGeometry g = geometry(x.shape());
  x_shape_ = x.shape();
  Tensor& y = y_.shaped(backend_, {g.n, g.out_h(), g.out_w(), g.c}, x.dtype());
  backend_.maxpool_forward(g, x, y, workspace_);
  return y;
}

Tensor& MaxPool2d::backward(const Tensor& dy) {
  PoolGeometry g = geometry(x_shape_);
  Tensor& dx = dx_.shaped(backend_, x_shape_, dy.dtype());
  backend_.maxpool_backward(g, dy, workspace_, dx);
  return dx;
}

const Tensor& GlobalAvgPool::forward(const Tensor& x, bool /*train*/) {
  DP_CHECK(x.rank() == 4, "global average pool expects {{N,H,W,C}}, got {}",
           to_string(x.shape()));
  x_shape_ = x.shape();
  Tensor& y = y_.shaped(backend_, {x.dim(0), x.dim(3)}, x.dtype());
  backend_.global_avgpool_forward(x, y);
  return y;
}

Tensor& GlobalAvgPool::backward(const Tensor& dy) {
  Tensor& dx = dx_.shaped(backend_, x_shape_, dy.dtype());
  backend_.global_avgpool_backward(dy, dx);
  return dx;
}

}  // namespace dp::nn
