// SGD with momentum (PyTorch semantics: d = g + wd*p masked; buf = d on the first update,
// then m*buf + (1 - dampening)*d; p -= lr*(buf, or d + m*buf with Nesterov)) over one whole
// flat parameter buffer: the trainer's Optimizer with its single default group, for tests and
// benchmarks that step a model directly. Holds the flat momentum buffer, zero at the start.
#pragma once

#include "backend/backend.h"
#include "core/tensor.h"
#include "optim/optimizer.h"

namespace dp::optim {

class Sgd {
 public:
  // `params` and `grads` are the model's flat buffers (held as views, not copied);
  // `decay_mask` selects the elements that get weight decay (undefined = all).
  Sgd(Backend& backend, Tensor params, Tensor grads, Tensor decay_mask, SgdHyper hyper);
  // One update with learning rate `lr` (the schedule's value for this step).
  void step(float lr);
  int64_t updates() const { return optimizer_.updates(); }
  const SgdHyper& hyper() const { return hyper_; }
  Tensor& momentum_buffer() { return optimizer_.momentum_buffer(); }
  const Tensor& momentum_buffer() const { return optimizer_.momentum_buffer(); }

 private:
  SgdHyper hyper_;
  Optimizer optimizer_;
};

}  // namespace dp::optim
