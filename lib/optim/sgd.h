// SGD with momentum (PyTorch semantics: d = g + wd*p masked; buf = d on the first update,
// then m*buf + (1 - dampening)*d; p -= lr*(buf, or d + m*buf with Nesterov)) over the flat
// parameter buffer. Holds the flat momentum buffer,
// zero at the start, which checkpoints save and restore.
#pragma once

#include "backend/backend.h"
#include "core/tensor.h"

namespace dp::optim {

// Throws UsageError for a negative momentum or weight decay, or Nesterov without momentum or
// with dampening (torch.optim.SGD's checks).
void check_sgd_hyper(const SgdHyper& hyper);
// DP_CHECK: `grads` and a defined `decay_mask` have as many elements as `params`.
void check_flat_buffers(const Tensor& params, const Tensor& grads, const Tensor& decay_mask);

// One SGD over a whole flat buffer: what the trainer's Optimizer does with a single group;
// tests and benchmarks use it directly.
class Sgd {
 public:
  // `params` and `grads` are the model's flat buffers (held as views, not copied);
  // `decay_mask` selects the elements that get weight decay (undefined = all).
  Sgd(Backend& backend, Tensor params, Tensor grads, Tensor decay_mask, SgdHyper hyper);
  // One update with learning rate `lr` (the schedule's value for this step).
  void step(float lr);
  int64_t updates() const { return updates_; }
  const SgdHyper& hyper() const { return hyper_; }
  Tensor& momentum_buffer() { return momentum_; }
  const Tensor& momentum_buffer() const { return momentum_; }

 private:
  Backend& backend_;
  Tensor params_, grads_, decay_mask_, momentum_;
  SgdHyper hyper_;
  int64_t updates_ = 0;  // the first one creates the buffer (SgdHyper::first_step)
};

}  // namespace dp::optim
