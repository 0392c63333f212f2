// A test-only Backend that runs every op on a device backend (CUDA) while the caller keeps
// host tensors: inputs are copied up, the device op runs, outputs (and in-place operands) are
// copied back. It lets the CPU backend's unit tests, which read and write tensors on the host,
// run unchanged against the CUDA backend. Opaque workspaces travel as bytes.
#pragma once

#include <cstring>
#include <memory>

#include "backend/backend.h"
#include "core/error.h"

namespace dp::test {

class HostStagedBackend final : public Backend {
 public:
  explicit HostStagedBackend(std::unique_ptr<Backend> device) : dev_(std::move(device)) {}

  Device device() const override { return Device::cpu; }  // what the caller's tensors are
  std::string name() const override { return "host-staged " + dev_->name(); }
  Backend& device_backend() { return *dev_; }

  Tensor allocate(const Shape& shape, DType dtype) override { return Tensor::empty(shape, dtype); }
  void copy_to_host(const Tensor& src, void* dst) override {
    std::memcpy(dst, src.data<void>(), src.bytes());
  }
  void copy_from_host(const void* src, Tensor& dst) override {
    std::memcpy(dst.data<void>(), src, dst.bytes());
  }
  void fill(Tensor& t, float value) override {
    Tensor d = up(t);
    dev_->fill(d, value);
    down(d, t);
  }
  void synchronize() override { dev_->synchronize(); }

  void augment_batch(const AugmentSpec& spec, const Tensor& images, const Tensor& crop_yx,
                     const Tensor& flip, Tensor& out) override {
    Tensor d = up(out);
    dev_->augment_batch(spec, up(images), up(crop_yx), up(flip), d);
    down(d, out);
  }

  void conv2d_forward(const Conv2dGeometry& g, const Tensor& x, const Tensor& w,
                      Tensor& y) override {
    Tensor dy_ = up(y);
    dev_->conv2d_forward(g, up(x), up(w), dy_);
    down(dy_, y);
  }
  void conv2d_backward(const Conv2dGeometry& g, const Tensor& x, const Tensor& w, const Tensor& dy,
                       Tensor* dx, Tensor& dw) override {
    Tensor ddx = dx ? up(*dx) : Tensor(), ddw = up(dw);
    dev_->conv2d_backward(g, up(x), up(w), up(dy), dx ? &ddx : nullptr, ddw);
    if (dx) down(ddx, *dx);
    down(ddw, dw);
  }

  void batchnorm_forward_train(const BatchNormGeometry& g, const Tensor& x, const Tensor& gamma,
                               const Tensor& beta, Tensor& running_mean, Tensor& running_var,
                               Tensor& y, Tensor& saved_mean, Tensor& saved_var,
                               Tensor& workspace) override {
    with_training_batchnorm_outputs(
        running_mean, running_var, y, saved_mean, saved_var, workspace,
        [&](Tensor& rm, Tensor& rv, Tensor& dyv, Tensor& sm, Tensor& sv, Tensor& ws) {
          dev_->batchnorm_forward_train(g, up(x), up(gamma), up(beta), rm, rv, dyv, sm, sv, ws);
        });
  }
  bool fuses_batchnorm_add_relu(const BatchNormGeometry& g) const override {
    return dev_->fuses_batchnorm_add_relu(g);
  }
  void batchnorm_add_relu_forward_train(const BatchNormGeometry& g, const Tensor& x,
                                        const Tensor& gamma, const Tensor& beta,
                                        Tensor& running_mean, Tensor& running_var,
                                        const Tensor& residual, Tensor& y, Tensor& saved_mean,
                                        Tensor& saved_var, Tensor& workspace) override {
    with_training_batchnorm_outputs(
        running_mean, running_var, y, saved_mean, saved_var, workspace,
        [&](Tensor& rm, Tensor& rv, Tensor& dyv, Tensor& sm, Tensor& sv, Tensor& ws) {
          dev_->batchnorm_add_relu_forward_train(g, up(x), up(gamma), up(beta), rm, rv,
                                                 up(residual), dyv, sm, sv, ws);
        });
  }
  void batchnorm_forward_inference(const BatchNormGeometry& g, const Tensor& x, const Tensor& gamma,
                                   const Tensor& beta, const Tensor& running_mean,
                                   const Tensor& running_var, Tensor& y) override {
    Tensor dyv = up(y);
    dev_->batchnorm_forward_inference(g, up(x), up(gamma), up(beta), up(running_mean),
                                      up(running_var), dyv);
    down(dyv, y);
  }
  void batchnorm_backward(const BatchNormGeometry& g, const Tensor& x, const Tensor& dy,
                          const Tensor& gamma, const Tensor& beta, const Tensor& saved_mean,
                          const Tensor& saved_var, const Tensor& workspace, Tensor& dx,
                          Tensor& dgamma, Tensor& dbeta) override {
    Tensor ddx = up(dx), dg = up(dgamma), db = up(dbeta);
    dev_->batchnorm_backward(g, up(x), up(dy), up(gamma), up(beta), up(saved_mean),
                             up(saved_var), up(workspace), ddx, dg, db);
    down(ddx, dx);
    down(dg, dgamma);
    down(db, dbeta);
  }

  void batchnorm_local_moments(const BatchNormGeometry& g, const Tensor& x, Tensor& mean,
                               Tensor& m2) override {
    Tensor dm = up(mean), dm2 = up(m2);
    dev_->batchnorm_local_moments(g, up(x), dm, dm2);
    down(dm, mean);
    down(dm2, m2);
  }
  void batchnorm_normalize(const BatchNormGeometry& g, const Tensor& x, const Tensor& gamma,
                           const Tensor& beta, const Tensor& mean, const Tensor& invstd,
                           Tensor& y) override {
    Tensor dyv = up(y);
    dev_->batchnorm_normalize(g, up(x), up(gamma), up(beta), up(mean), up(invstd), dyv);
    down(dyv, y);
  }
  void batchnorm_backward_sums(const BatchNormGeometry& g, const Tensor& x, const Tensor& dy,
                               const Tensor& gamma, const Tensor& beta, const Tensor& mean,
                               const Tensor& invstd, Tensor& sum_dy,
                               Tensor& sum_dy_xhat) override {
    Tensor ds = up(sum_dy), dsx = up(sum_dy_xhat);
    dev_->batchnorm_backward_sums(g, up(x), up(dy), up(gamma), up(beta), up(mean), up(invstd),
                                  ds, dsx);
    down(ds, sum_dy);
    down(dsx, sum_dy_xhat);
  }
  void batchnorm_backward_input(const BatchNormGeometry& g, const Tensor& x, const Tensor& dy,
                                const Tensor& gamma, const Tensor& beta, const Tensor& mean,
                                const Tensor& invstd, const Tensor& mean_dy,
                                const Tensor& mean_dy_xhat, Tensor& dx) override {
    Tensor ddx = up(dx);
    dev_->batchnorm_backward_input(g, up(x), up(dy), up(gamma), up(beta), up(mean), up(invstd),
                                   up(mean_dy), up(mean_dy_xhat), ddx);
    down(ddx, dx);
  }

  void relu_forward(const Tensor& x, Tensor& y) override { unary(x, y, &Backend::relu_forward); }
  void relu_backward(const Tensor& y, const Tensor& dy, Tensor& dx) override {
    binary(y, dy, dx, &Backend::relu_backward);
  }
  void add_relu_forward(const Tensor& a, const Tensor& b, Tensor& y) override {
    binary(a, b, y, &Backend::add_relu_forward);
  }
  void add_relu_backward(const Tensor& y, const Tensor& dy, Tensor& dx) override {
    binary(y, dy, dx, &Backend::add_relu_backward);
  }
  void accumulate(const Tensor& x, Tensor& y) override { unary(x, y, &Backend::accumulate); }
  void accumulate_relu_backward(const Tensor& x, const Tensor& relu_output, Tensor& y) override {
    Tensor dy = up(y);
    dev_->accumulate_relu_backward(up(x), up(relu_output), dy);
    down(dy, y);
  }

  void subsample_pad_forward(const SubsamplePadGeometry& g, const Tensor& x, Tensor& y) override {
    Tensor dyv = up(y);
    dev_->subsample_pad_forward(g, up(x), dyv);
    down(dyv, y);
  }
  void subsample_pad_backward(const SubsamplePadGeometry& g, const Tensor& dy,
                              Tensor& dx) override {
    Tensor ddx = up(dx);
    dev_->subsample_pad_backward(g, up(dy), ddx);
    down(ddx, dx);
  }

  void maxpool_forward(const PoolGeometry& g, const Tensor& x, Tensor& y,
                       Tensor& workspace) override {
    Tensor dyv = up(y), ws = up(workspace);
    dev_->maxpool_forward(g, up(x), dyv, ws);
    down(dyv, y);
    down(ws, workspace);
  }
  void maxpool_backward(const PoolGeometry& g, const Tensor& dy, const Tensor& workspace,
                        Tensor& dx) override {
    Tensor ddx = up(dx);
    dev_->maxpool_backward(g, up(dy), up(workspace), ddx);
    down(ddx, dx);
  }
  void global_avgpool_forward(const Tensor& x, Tensor& y) override {
    unary(x, y, &Backend::global_avgpool_forward);
  }
  void global_avgpool_backward(const Tensor& dy, Tensor& dx) override {
    unary(dy, dx, &Backend::global_avgpool_backward);
  }

  void linear_forward(const Tensor& x, const Tensor& w, const Tensor& b, Tensor& y) override {
    Tensor dyv = up(y);
    dev_->linear_forward(up(x), up(w), up(b), dyv);
    down(dyv, y);
  }
  void linear_backward(const Tensor& x, const Tensor& w, const Tensor& dy, Tensor& dx, Tensor& dw,
                       Tensor& db) override {
    Tensor ddx = up(dx), ddw = up(dw), ddb = up(db);
    dev_->linear_backward(up(x), up(w), up(dy), ddx, ddw, ddb);
    down(ddx, dx);
    down(ddw, dw);
    down(ddb, db);
  }

  float softmax_cross_entropy(const Tensor& logits, const Tensor& labels, float label_smoothing,
                              Tensor& dlogits, int64_t& correct) override {
    Tensor dd = up(dlogits);
    float loss = dev_->softmax_cross_entropy(up(logits), up(labels), label_smoothing, dd, correct);
    down(dd, dlogits);
    return loss;
  }

  void scale(Tensor& t, float factor) override {
    Tensor d = up(t);
    dev_->scale(d, factor);
    down(d, t);
  }
  void sgd_step(const SgdHyper& h, Tensor& params, const Tensor& grads, Tensor& momentum_buffer,
                const Tensor& decay_mask) override {
    Tensor p = up(params), m = up(momentum_buffer);
    dev_->sgd_step(h, p, up(grads), m, up(decay_mask));
    down(p, params);
    down(m, momentum_buffer);
  }
  double sum_of_squares(const Tensor& t) override { return dev_->sum_of_squares(up(t)); }

 private:
  // A device copy of a host tensor (undefined stays undefined: the op allocates it).
  Tensor up(const Tensor& host) {
    if (!host.defined()) return Tensor();
    DP_CHECK(host.device() == Device::cpu, "staged backend: expected a host tensor");
    Tensor d = dev_->allocate(host.shape(), host.dtype());
    dev_->copy_from_host(host.data<void>(), d);
    return d;
  }
  // The device result back into the caller's host tensor, reshaped to the result.
  void down(const Tensor& device, Tensor& host) {
    if (!device.defined()) return;
    if (!host.defined() || host.shape() != device.shape() || host.dtype() != device.dtype())
      host.ensure(device.shape(), device.dtype());
    dev_->copy_to_host(device, host.data<void>());
  }

  // The six tensors a training batch norm writes (running statistics, output, saved statistics,
  // workspace): copied up, handed to `run` with the device op, and copied back.
  template <typename Run>
  void with_training_batchnorm_outputs(Tensor& running_mean, Tensor& running_var, Tensor& y,
                                       Tensor& saved_mean, Tensor& saved_var, Tensor& workspace,
                                       Run run) {
    Tensor rm = up(running_mean), rv = up(running_var), dyv = up(y), sm = up(saved_mean),
           sv = up(saved_var), ws = up(workspace);
    run(rm, rv, dyv, sm, sv, ws);
    down(rm, running_mean);
    down(rv, running_var);
    down(dyv, y);
    down(sm, saved_mean);
    down(sv, saved_var);
    down(ws, workspace);
  }
  void unary(const Tensor& x, Tensor& y, void (Backend::*op)(const Tensor&, Tensor&)) {
    Tensor d = up(y);
    (dev_.get()->*op)(up(x), d);
    down(d, y);
  }
  void binary(const Tensor& a, const Tensor& b, Tensor& y,
              void (Backend::*op)(const Tensor&, const Tensor&, Tensor&)) {
    Tensor d = up(y);
    (dev_.get()->*op)(up(a), up(b), d);
    down(d, y);
  }

  std::unique_ptr<Backend> dev_;
};

}  // namespace dp::test
