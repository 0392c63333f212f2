#include "nn/parameter_store.h"

#include <algorithm>
#include <memory>

#include "core/error.h"

namespace dp::nn {

ParameterStore::Id ParameterStore::add_entry(StateEntry e) {
  DP_CHECK(!finalized_, "cannot register '{}' after finalize()", e.name);
  DP_CHECK(!by_name_.count(e.name), "state name '{}' registered twice", e.name);
  DP_CHECK(e.numel() > 0, "state '{}' has empty shape {}", e.name, to_string(e.shape));
  if (e.kind == StateKind::parameter) {
    e.offset = param_elements_;
    param_elements_ += e.numel();
  } else {
    // Each buffer starts on a 16-byte boundary: cuDNN's persistent batch norm reads the
    // running statistics as 16-byte vectors, and a one-element num_batches_tracked would
    // otherwise shift every later layer's statistics off that boundary. The gaps stay zero.
    e.offset = (buffer_elements_ + kBufferAlignment - 1) / kBufferAlignment * kBufferAlignment;
    buffer_elements_ = e.offset + e.numel();
  }
  Id id = entries_.size();
  by_name_.emplace(e.name, id);
  entries_.push_back(std::move(e));
  return id;
}

ParameterStore::Id ParameterStore::add_parameter(const std::string& name, const Shape& shape,
                                                 ParamRole role, bool trainable) {
  StateEntry e{name, shape, StateKind::parameter};
  e.param_role = role;
  e.trainable = trainable;
  return add_entry(std::move(e));
}

ParameterStore::Id ParameterStore::add_buffer(const std::string& name, const Shape& shape,
                                              BufferRole role) {
  StateEntry e{name, shape, StateKind::buffer};
  e.buffer_role = role;
  return add_entry(std::move(e));
}

void ParameterStore::finalize() {
  DP_CHECK(!finalized_, "finalize() called twice");
  DP_CHECK(param_elements_ > 0, "a model without parameters");
  params_ = backend_.allocate({param_elements_});
  grads_ = backend_.allocate({param_elements_});
  backend_.fill(grads_, 0.0f);
  buffers_ = backend_.allocate({buffer_elements_ > 0 ? buffer_elements_ : 1});
  backend_.fill(buffers_, 0.0f);
  if (buffer_elements_ == 0) buffers_ = buffers_.reshaped({1});
  one_ = backend_.allocate({1});
  backend_.fill(one_, 1.0f);

  param_views_.assign(entries_.size(), Tensor());
  grad_views_.assign(entries_.size(), Tensor());
  buffer_views_.assign(entries_.size(), Tensor());
  frozen_.assign(entries_.size(), false);
  // The views keep their flat buffer alive, so a layer's view never dangles.
  auto keep_params = std::make_shared<Tensor>(params_);
  auto keep_grads = std::make_shared<Tensor>(grads_);
  auto keep_buffers = std::make_shared<Tensor>(buffers_);
  for (Id id = 0; id < entries_.size(); ++id) {
    const StateEntry& e = entries_[id];
    if (e.kind == StateKind::parameter) {
      param_views_[id] = Tensor::view(params_.data<float>() + e.offset, e.shape, DType::f32,
                                      params_.device(), keep_params);
      grad_views_[id] = Tensor::view(grads_.data<float>() + e.offset, e.shape, DType::f32,
                                     grads_.device(), keep_grads);
    } else {
      buffer_views_[id] = Tensor::view(buffers_.data<float>() + e.offset, e.shape, DType::f32,
                                       buffers_.device(), keep_buffers);
    }
  }
  finalized_ = true;
}

bool ParameterStore::requires_grad(Id id) const {
  const StateEntry& e = entries_.at(id);
  DP_CHECK(e.kind == StateKind::parameter, "requires_grad of buffer '{}'", e.name);
  return e.trainable && !(finalized_ && frozen_[id]);
}

void ParameterStore::set_requires_grad(Id id, bool required) {
  check_finalized("set_requires_grad");
  const StateEntry& e = entries_.at(id);
  DP_CHECK(e.kind == StateKind::parameter, "set_requires_grad of buffer '{}'", e.name);
  DP_CHECK(e.trainable || !required, "parameter '{}' is fixed: it cannot require a gradient",
           e.name);
  if (frozen_[id] == !required) return;
  frozen_[id] = !required;
  ++requires_grad_version_;
}

void ParameterStore::report_grad(Id id) {
  if (!requires_grad(id)) backend_.fill(grad(id), 0.0f);
  grad_ready(id);
}

void ParameterStore::check_finalized(const char* what) const {
  DP_CHECK(finalized_, "{} before ParameterStore::finalize()", what);
}

Tensor& ParameterStore::view_of(Id id, StateKind kind, const char* what) {
  check_finalized(what);
  DP_CHECK(id < entries_.size() && entries_[id].kind == kind, "{}: id {} is not a {}", what, id,
           kind == StateKind::parameter ? "parameter" : "buffer");
  return kind == StateKind::buffer ? buffer_views_[id] : param_views_[id];
}

Tensor& ParameterStore::param(Id id) { return view_of(id, StateKind::parameter, "param"); }
Tensor& ParameterStore::grad(Id id) {
  view_of(id, StateKind::parameter, "grad");  // validates the id
  return grad_views_[id];
}
Tensor& ParameterStore::buffer(Id id) { return view_of(id, StateKind::buffer, "buffer"); }

std::optional<ParameterStore::Id> ParameterStore::find(const std::string& name) const {
  auto it = by_name_.find(name);
  if (it == by_name_.end()) return std::nullopt;
  return it->second;
}

size_t ParameterStore::parameter_tensor_count() const {
  size_t n = 0;
  for (const auto& e : entries_) n += e.kind == StateKind::parameter;
  return n;
}

size_t ParameterStore::buffer_tensor_count() const {
  return entries_.size() - parameter_tensor_count();
}

Tensor ParameterStore::make_decay_mask(bool exempt_bn_and_bias) const {
  check_finalized("make_decay_mask");
  std::vector<float> host(static_cast<size_t>(param_elements_), 1.0f);
  if (exempt_bn_and_bias) {
    for (const auto& e : entries_) {
      const ParamRole r = e.param_role;
      bool exempt = e.kind == StateKind::parameter &&
                    (r == ParamRole::bn_weight || r == ParamRole::bn_bias ||
                     r == ParamRole::linear_bias || r == ParamRole::conv_bias);
      if (exempt) std::fill_n(host.begin() + e.offset, e.numel(), 0.0f);
    }
  }
  Tensor mask = backend_.allocate({param_elements_});
  backend_.copy_from_host(host.data(), mask);
  return mask;
}

static ParameterStore::Id require(const ParameterStore& s, const std::string& name) {
  auto id = s.find(name);
  if (!id) throw UsageError("no parameter or buffer named '" + name + "' in this model");
  return *id;
}

void ParameterStore::write(const std::string& name, const float* host, size_t count) {
  write(require(*this, name), host, count);
}
void ParameterStore::read(const std::string& name, float* host, size_t count) const {
  read(require(*this, name), host, count);
}

void ParameterStore::write(Id id, const float* host, size_t count) {
  const StateEntry& e = entries_.at(id);
  DP_CHECK(static_cast<int64_t>(count) == e.numel(), "'{}' has {} elements, got {}", e.name,
           e.numel(), count);
  Tensor& t = e.kind == StateKind::parameter ? param(id) : buffer(id);
  backend_.copy_from_host(host, t);
}

void ParameterStore::read(Id id, float* host, size_t count) const {
  check_finalized("read");
  const StateEntry& e = entries_.at(id);
  DP_CHECK(static_cast<int64_t>(count) == e.numel(), "'{}' has {} elements, got {}", e.name,
           e.numel(), count);
  backend_.copy_to_host(e.kind == StateKind::parameter ? param_views_[id] : buffer_views_[id],
                        host);
}

void ParameterStore::read_grad(Id id, float* host, size_t count) const {
  check_finalized("read_grad");
  const StateEntry& e = entries_.at(id);
  DP_CHECK(e.kind == StateKind::parameter, "'{}' is a buffer, it has no gradient", e.name);
  DP_CHECK(static_cast<int64_t>(count) == e.numel(), "'{}' has {} elements, got {}", e.name,
           e.numel(), count);
  backend_.copy_to_host(grad_views_[id], host);
}

}  // namespace dp::nn
