#include "train/model_state.h"

namespace dp {

ModelState::ModelState(nn::Model& model, Tensor* momentum)
    : model_(model),
      momentum_(momentum),
      params_(model.params().numel()),
      buffers_(model.buffers().numel()),
      momentum_host_(momentum ? momentum->numel() : 0) {}

CheckpointSections ModelState::staging_sections() {
  CheckpointSections s;
  for (const auto& e : model_.store().entries()) {
    if (e.kind == nn::StateKind::parameter) {
      s.params.push_back({e.name, e.shape, params_.data() + e.offset});
      if (momentum_) s.momentum.push_back({e.name, e.shape, momentum_host_.data() + e.offset});
      if (lookahead_)
        s.lookahead_params.push_back({e.name, e.shape, lookahead_->params.data() + e.offset});
    } else {
      s.buffers.push_back({e.name, e.shape, buffers_.data() + e.offset});
      if (lookahead_ && lookahead_averages(e))
        s.lookahead_buffers.push_back({e.name, e.shape, lookahead_->buffers.data() + e.offset});
    }
  }
  return s;
}

CheckpointSections ModelState::copy_to_host() {
  Backend& backend = model_.store().backend();
  backend.copy_to_host(model_.params(), params_.data());
  backend.copy_to_host(model_.buffers(), buffers_.data());
  if (momentum_) backend.copy_to_host(*momentum_, momentum_host_.data());
  return staging_sections();
}

void ModelState::copy_from_host() {
  Backend& backend = model_.store().backend();
  backend.copy_from_host(params_.data(), model_.params());
  backend.copy_from_host(buffers_.data(), model_.buffers());
  if (momentum_) backend.copy_from_host(momentum_host_.data(), *momentum_);
}

void ModelState::save(const std::string& path, const CheckpointMeta& meta) {
  save_checkpoint(path, copy_to_host(), meta);
}

CheckpointMeta ModelState::load(const std::string& path) {
  CheckpointMeta meta = load_checkpoint(path, staging_sections());
  copy_from_host();
  return meta;
}

}  // namespace dp
