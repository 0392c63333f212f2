#include "optim/sgd.h"

#include "core/error.h"

namespace dp::optim {

void check_sgd_hyper(const SgdHyper& hyper) {
  if (hyper.momentum < 0 || hyper.weight_decay < 0)
    throw UsageError("SGD momentum and weight decay must be >= 0");
  if (hyper.nesterov && (hyper.momentum <= 0 || hyper.dampening != 0))
    throw UsageError("Nesterov momentum requires momentum > 0 and zero dampening");
}

void check_flat_buffers(const Tensor& params, const Tensor& grads, const Tensor& decay_mask) {
  DP_CHECK(params.numel() == grads.numel(), "params {} vs grads {}", params.numel(),
           grads.numel());
  DP_CHECK(!decay_mask.defined() || decay_mask.numel() == params.numel(),
           "decay mask {} vs params {}", decay_mask.numel(), params.numel());
}

Sgd::Sgd(Backend& backend, Tensor params, Tensor grads, Tensor decay_mask, SgdHyper hyper)
    : backend_(backend),
      params_(std::move(params)),
      grads_(std::move(grads)),
      decay_mask_(std::move(decay_mask)),
      hyper_(hyper) {
  check_flat_buffers(params_, grads_, decay_mask_);
  check_sgd_hyper(hyper_);
  momentum_ = backend_.allocate({params_.numel()});
  backend_.fill(momentum_, 0.0f);
}

void Sgd::step(float lr) {
  SgdHyper h = hyper_;
  h.lr = lr;
  h.first_step = updates_++ == 0;
  backend_.sgd_step(h, params_, grads_, momentum_, decay_mask_);
}

}  // namespace dp::optim
