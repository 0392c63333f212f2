#include "nn/batchnorm2d.h"

#include "core/error.h"
#include "nn/stats_exchange.h"

namespace dp::nn {

BatchNorm2d::BatchNorm2d(ParameterStore& store, const std::string& name, int64_t channels,
                         BatchNormOptions options)
    : store_(store),
      name_(name),
      channels_(channels),
      options_(options),
      weight_(store.add_parameter(name + ".weight", {channels}, ParamRole::bn_weight,
                                  !options.fixed_weight)),
      bias_(store.add_parameter(name + ".bias", {channels}, ParamRole::bn_bias)),
      running_mean_(store.add_buffer(name + ".running_mean", {channels}, BufferRole::running_mean)),
      running_var_(store.add_buffer(name + ".running_var", {channels}, BufferRole::running_var)),
      batches_tracked_(
          store.add_buffer(name + ".num_batches_tracked", {1}, BufferRole::num_batches_tracked)) {}

BatchNormGeometry BatchNorm2d::geometry(const Tensor& x) const {
  DP_CHECK(x.rank() == 4 && x.dim(3) == channels_, "batch norm '{}' expects {{N,H,W,{}}}, got {}",
           name_, channels_, to_string(x.shape()));
  BatchNormGeometry g{x.dim(0), x.dim(1), x.dim(2), channels_};
  g.eps = options_.eps;
  g.momentum = options_.momentum;
  g.fuse_relu = options_.fuse_relu;
  return g;
}

void BatchNorm2d::require_batch_statistics(const BatchNormGeometry& g) const {
  if (g.n * g.h * g.w > 1) return;
  throw UsageError(fmt::format(
      "batch norm '{}' in training needs more than one value per channel, got a batch of {} at "
      "{}x{} (PyTorch refuses it too): use a larger --batch-size or larger images (or, where "
      "an epoch's last batch holds one image, dptrain train's --drop-last)",
      name_, g.n, g.h, g.w));
}

StatsExchange* BatchNorm2d::exchange() const {
  StatsExchange* e = store_.stats_exchange();
  return e && e->size() > 1 ? e : nullptr;
}

const Tensor& BatchNorm2d::forward(const Tensor& x, bool train) {
  BatchNormGeometry g = geometry(x);
  Backend& be = store_.backend();
  x_ = train ? x : Tensor();  // see layer.h: an evaluation keeps no input alive
  Tensor& y = y_.shaped(be, x.shape(), x.dtype());
  synced_ = false;
  gelu_fused_ = false;
  if (StatsExchange* e = train ? exchange() : nullptr) {
    sync_.forward(be, *e, g, x, store_.param(weight_), store_.param(bias_),
                  store_.buffer(running_mean_), store_.buffer(running_var_), y);
    be.accumulate(store_.one(), store_.buffer(batches_tracked_));
    synced_ = true;
  } else if (train) {
    require_batch_statistics(g);
    be.batchnorm_forward_train(g, x, store_.param(weight_), store_.param(bias_),
                               store_.buffer(running_mean_), store_.buffer(running_var_), y,
                               saved_mean_, saved_var_, workspace_);
    be.accumulate(store_.one(), store_.buffer(batches_tracked_));
  } else {
    be.batchnorm_forward_inference(g, x, store_.param(weight_), store_.param(bias_),
                                   store_.buffer(running_mean_), store_.buffer(running_var_), y);
  }
  return y;
}

void BatchNorm2d::forward_add_relu(const Tensor& x, const Tensor& residual, Tensor& out,
                                   bool train) {
  BatchNormGeometry g = geometry(x);
  Backend& be = store_.backend();
  if (!train || exchange() || !be.fuses_batchnorm_add_relu(g))
    return be.add_relu_forward(forward(x, train), residual, out);
  require_batch_statistics(g);
  x_ = x;
  synced_ = false;
  gelu_fused_ = false;
  be.batchnorm_add_relu_forward_train(g, x, store_.param(weight_), store_.param(bias_),
                                      store_.buffer(running_mean_), store_.buffer(running_var_),
                                      residual, out, saved_mean_, saved_var_, workspace_);
  be.accumulate(store_.one(), store_.buffer(batches_tracked_));
}

const Tensor& BatchNorm2d::forward_gelu(const Tensor& x, Gelu& act, bool train) {
  BatchNormGeometry g = geometry(x);
  Backend& be = store_.backend();
  gelu_fused_ = train && !exchange() && be.fuses_batchnorm_gelu(g, x.dtype());
  if (!gelu_fused_) return act.forward(forward(x, train), train);
  require_batch_statistics(g);
  x_ = x;
  synced_ = false;
  Tensor& y = y_.shaped(be, x.shape(), x.dtype());
  be.batchnorm_gelu_forward_train(g, x, store_.param(weight_), store_.param(bias_),
                                  store_.buffer(running_mean_), store_.buffer(running_var_), y,
                                  saved_mean_, saved_var_);
  be.accumulate(store_.one(), store_.buffer(batches_tracked_));
  return y;
}

Tensor& BatchNorm2d::backward_gelu(const Tensor& dy, Gelu& act) {
  if (!gelu_fused_) return backward(act.backward(dy));
  DP_CHECK(x_.defined(), "batch norm '{}': backward needs a train-mode forward", name_);
  BatchNormGeometry g = geometry(x_);
  Tensor& dx = dx_.shaped(store_.backend(), x_.shape(), x_.dtype());
  store_.backend().batchnorm_gelu_backward(g, x_, dy, store_.param(weight_), store_.param(bias_),
                                           saved_mean_, saved_var_, dx, store_.grad(weight_),
                                           store_.grad(bias_));
  store_.report_grad(weight_);
  store_.report_grad(bias_);
  return dx;
}

Tensor& BatchNorm2d::backward(const Tensor& dy) {
  DP_CHECK(x_.defined(), "batch norm '{}': backward needs a train-mode forward", name_);
  BatchNormGeometry g = geometry(x_);
  Tensor& dx = dx_.shaped(store_.backend(), x_.shape(), x_.dtype());
  if (synced_) {
    StatsExchange* e = exchange();
    DP_CHECK(e, "batch norm '{}': the stats exchange went away between forward and backward",
             name_);
    sync_.backward(store_.backend(), *e, g, x_, dy, store_.param(weight_), store_.param(bias_), dx,
                   store_.grad(weight_), store_.grad(bias_));
  } else {
    store_.backend().batchnorm_backward(g, x_, dy, store_.param(weight_), store_.param(bias_),
                                        saved_mean_, saved_var_, workspace_, dx,
                                        store_.grad(weight_), store_.grad(bias_));
  }
  // A fixed scale, or a frozen parameter, reads 0 (report_grad).
  store_.report_grad(weight_);
  store_.report_grad(bias_);
  return dx;
}

}  // namespace dp::nn
