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

std::vector<float> read(Backend& backend, const Tensor& t) {
  std::vector<float> v(t.numel());
  if (!v.empty()) backend.copy_to_host(t, v.data());
  return v;
}

}  // namespace

LookaheadCallback::LookaheadCallback(nn::Model& model, const LookaheadOptions& options)
    : model_(model), options_(options) {
  Backend& backend = model.store().backend();
  params_ema_ = read(backend, model.params());
  buffers_ema_ = read(backend, model.buffers());
  buffer_averaged_.assign(buffers_ema_.size(), 0);
  for (const nn::StateEntry& e : model.store().entries())
    if (e.kind == nn::StateKind::buffer && e.buffer_role != nn::BufferRole::num_batches_tracked)
      std::fill_n(buffer_averaged_.begin() + e.offset, e.numel(), 1);
}

double LookaheadCallback::decay_after(int64_t t) const {
  if (t % options_.every != 0) return -1;
  const double progress = double(t) / double(options_.total_steps);
  return std::pow(options_.base, double(options_.every)) * std::pow(progress, options_.power);
}

void LookaheadCallback::after_step(const StepPosition& at, optim::Optimizer&, bool) {
  const int64_t t = at.global_step + 1;
  if (const double d = decay_after(t); d >= 0) update(d);
  if (t == options_.total_steps) update(1.0);
}

void LookaheadCallback::update(double decay) {
  Backend& backend = model_.store().backend();
  const auto weight = static_cast<float>(1.0 - decay);
  host_ = read(backend, model_.params());
  for (size_t i = 0; i < host_.size(); ++i)
    host_[i] = params_ema_[i] = lerp(params_ema_[i], host_[i], weight);
  if (!host_.empty()) backend.copy_from_host(host_.data(), model_.params());
  host_ = read(backend, model_.buffers());
  for (size_t i = 0; i < host_.size(); ++i)
    if (buffer_averaged_[i]) host_[i] = buffers_ema_[i] = lerp(buffers_ema_[i], host_[i], weight);
  if (!host_.empty()) backend.copy_from_host(host_.data(), model_.buffers());
}

}  // namespace dp
