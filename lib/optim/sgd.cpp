#include "optim/sgd.h"

namespace dp::optim {

namespace {

std::vector<ParamGroup> whole_buffer(const SgdHyper& hyper, int64_t numel) {
  ParamGroup group;
  group.ranges = {{0, numel}};
  group.momentum = hyper.momentum;
  group.dampening = hyper.dampening;
  group.weight_decay = hyper.weight_decay;
  group.nesterov = hyper.nesterov;
  return {group};
}

}  // namespace

Sgd::Sgd(Backend& backend, Tensor params, Tensor grads, Tensor decay_mask, SgdHyper hyper)
    : hyper_(hyper),
      optimizer_(backend, params, std::move(grads), std::move(decay_mask),
                 whole_buffer(hyper, params.numel()), hyper.lr) {}

void Sgd::step(float lr) {
  optimizer_.set_lr(lr);
  optimizer_.step();
}

}  // namespace dp::optim
