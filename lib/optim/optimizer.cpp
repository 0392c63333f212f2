#include "optim/optimizer.h"

#include <algorithm>

#include "core/error.h"

namespace dp::optim {

namespace {

SgdHyper hyper_of(const ParamGroup& group, double lr) {
  SgdHyper h;
  h.lr = static_cast<float>(lr * group.lr_factor);
  h.momentum = group.momentum;
  h.dampening = group.dampening;
  h.weight_decay = group.weight_decay;
  h.nesterov = group.nesterov;
  return h;
}

// Every range inside [0, numel) and no element in two of them.
void check_disjoint(const std::vector<ParamGroup>& groups, int64_t numel) {
  std::vector<ParamRange> all;
  for (const ParamGroup& g : groups) all.insert(all.end(), g.ranges.begin(), g.ranges.end());
  std::sort(all.begin(), all.end(),
            [](const ParamRange& a, const ParamRange& b) { return a.offset < b.offset; });
  int64_t end = 0;
  for (const ParamRange& r : all) {
    DP_CHECK(r.offset >= end && r.numel >= 0, "parameter groups overlap at element {}", r.offset);
    end = r.offset + r.numel;
  }
  DP_CHECK(end <= numel, "parameter group range ends at {} of {} elements", end, numel);
}

}  // namespace

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

Optimizer::Optimizer(Backend& backend, Tensor params, Tensor grads, Tensor decay_mask,
                     std::vector<ParamGroup> groups, double lr)
    : backend_(backend),
      params_(std::move(params)),
      grads_(std::move(grads)),
      decay_mask_(std::move(decay_mask)),
      groups_(std::move(groups)),
      lr_(lr) {
  check_flat_buffers(params_, grads_, decay_mask_);
  for (const ParamGroup& g : groups_) check_sgd_hyper(hyper_of(g, lr_));
  check_disjoint(groups_, params_.numel());
  momentum_ = backend_.allocate({params_.numel()});
  backend_.fill(momentum_, 0.0f);
}

void Optimizer::step() {
  for (const ParamGroup& group : groups_) {
    if (group.frozen) continue;
    SgdHyper h = hyper_of(group, lr_);
    h.first_step = updates_ == 0;
    for (const ParamRange& range : group.ranges) update(h, range);
  }
  ++updates_;
}

void Optimizer::update(const SgdHyper& h, const ParamRange& range) {
  if (range.offset == 0 && range.numel == params_.numel()) {
    backend_.sgd_step(h, params_, grads_, momentum_, decay_mask_);
    return;
  }
  Tensor params = slice(params_, range), momentum = slice(momentum_, range);
  Tensor mask = decay_mask_.defined() ? slice(decay_mask_, range) : Tensor();
  backend_.sgd_step(h, params, slice(grads_, range), momentum, mask);
}

Tensor Optimizer::slice(Tensor& flat, const ParamRange& range) const {
  return Tensor::view(flat.data<float>() + range.offset, {range.numel}, DType::f32,
                      flat.device());
}

ParamGroup& Optimizer::group(const std::string& name) {
  std::string known;
  for (ParamGroup& g : groups_) {
    if (g.name == name) return g;
    known += (known.empty() ? "" : ", ") + g.name;
  }
  throw UsageError(fmt::format("no parameter group '{}' (groups: {})", name, known));
}

}  // namespace dp::optim
