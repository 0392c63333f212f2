#include "train/lookahead_callback.h"

#include <cmath>

namespace dp {

namespace {

// torch's CPU lerp: self + weight * (end - self) for |weight| < 0.5, else
// end - (end - self) * (1 - weight), in the tensors' float type.
float lerp(float self, float end, float weight) {
  return std::abs(weight) < 0.5f ? self + weight * (end - self)
                                 : end - (end - self) * (1.0f - weight);
}

// `t` into `v` (resized; its capacity is kept from one update to the next).
void read_into(Backend& backend, const Tensor& t, std::vector<float>& v) {
  v.resize(static_cast<size_t>(t.numel()));
  if (!v.empty()) backend.copy_to_host(t, v.data());
}

// ema = lerp(ema, w, weight) where `averaged` (nullptr: everywhere), then w = ema there; `t` is
// read into and written back from `host`.
void blend(Backend& backend, Tensor& t, std::vector<float>& ema, const uint8_t* averaged,
           float weight, std::vector<float>& host) {
  read_into(backend, t, host);
  for (size_t i = 0; i < host.size(); ++i)
    if (averaged == nullptr || averaged[i]) host[i] = ema[i] = lerp(ema[i], host[i], weight);
  if (!host.empty()) backend.copy_from_host(host.data(), t);
}

// The step after which a late average starts (0: it starts with training): the first multiple
// of `every` among the steps of epochs start_epoch + 1 on.
int64_t start_step(const LookaheadOptions& o) {
  if (o.start_epoch == 0) return 0;
  return (o.start_epoch * o.steps_per_epoch / o.every + 1) * o.every;
}

}  // namespace

LookaheadCallback::LookaheadCallback(nn::Model& model, const LookaheadOptions& options)
    : model_(model), options_(options), start_step_(start_step(options)) {
  snapshot();
  buffer_averaged_.assign(average_.buffers.size(), 0);
  for (const nn::StateEntry& e : model.store().entries())
    if (e.kind == nn::StateKind::buffer && lookahead_averages(e))
      std::fill_n(buffer_averaged_.begin() + e.offset, e.numel(), 1);
}

double LookaheadCallback::decay_after(int64_t t) const {
  if (t % options_.every != 0) return -1;
  const double progress = double(t) / double(options_.total_steps);
  return std::pow(options_.base, double(options_.every)) * std::pow(progress, options_.power);
}

void LookaheadCallback::after_step(const StepPosition& at, optim::Optimizer&, bool) {
  const int64_t t = at.global_step + 1;
  if (t < start_step_) return;  // not started: nothing moves
  if (t == start_step_) {
    snapshot();
  } else if (const double d = decay_after(t); d >= 0) {
    update(d);
  }
  const bool epoch_ends = at.step_in_epoch + 1 == options_.steps_per_epoch;
  if (t == options_.total_steps || (options_.each_epoch && epoch_ends)) update(1.0);
}

void LookaheadCallback::snapshot() {
  Backend& backend = model_.store().backend();
  read_into(backend, model_.params(), average_.params);
  read_into(backend, model_.buffers(), average_.buffers);
}

void LookaheadCallback::update(double decay) {
  Backend& backend = model_.store().backend();
  const auto weight = static_cast<float>(1.0 - decay);
  blend(backend, model_.params(), average_.params, nullptr, weight, host_);
  blend(backend, model_.buffers(), average_.buffers, buffer_averaged_.data(), weight, host_);
}

}  // namespace dp
