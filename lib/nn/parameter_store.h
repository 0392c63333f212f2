// ParameterStore: the registry of a model's named state. Modules register parameters and
// buffers under torchvision's state_dict keys ("layer1.0.conv1.weight", "bn1.running_var");
// finalize() then allocates ONE flat parameter buffer, ONE flat gradient buffer with the same
// offsets and ONE flat buffer for the BN statistics, and hands out views into them. The
// reducer, the optimizer and the checkpoint writer work on the flat buffers; names and
// offsets let checkpoints and the PyTorch oracle match tensors one by one.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "backend/backend.h"
#include "core/tensor.h"

namespace dp::nn {

class StatsExchange;  // nn/stats_exchange.h

// What a parameter is; decides its init and whether "no decay on BN/bias" exempts it.
enum class ParamRole { conv_weight, conv_bias, linear_weight, linear_bias, bn_weight, bn_bias };
enum class BufferRole { running_mean, running_var, num_batches_tracked };
enum class StateKind { parameter, buffer };

struct StateEntry {
  std::string name;
  Shape shape;
  StateKind kind;
  ParamRole param_role = ParamRole::conv_weight;      // when kind == parameter
  BufferRole buffer_role = BufferRole::running_mean;  // when kind == buffer
  int64_t offset = 0;  // element offset into the flat parameter (or buffer) tensor
  // false: a parameter the model keeps at its initial value (torch: requires_grad=False), such
  // as a batch norm's fixed scale. It is saved and loaded like any other, but belongs to no
  // optimizer group (train/param_groups.h), and its layer writes its gradient as 0.
  // ParameterStore::requires_grad adds the frozen state that may change during a run.
  bool trainable = true;
  int64_t numel() const { return dp::numel(shape); }
};

class ParameterStore {
 public:
  using Id = size_t;  // index into entries(), stable from registration on

  explicit ParameterStore(Backend& backend) : backend_(backend) {}
  ParameterStore(const ParameterStore&) = delete;
  ParameterStore& operator=(const ParameterStore&) = delete;

  Id add_parameter(const std::string& name, const Shape& shape, ParamRole role,
                   bool trainable = true);
  Id add_buffer(const std::string& name, const Shape& shape, BufferRole role);
  // Allocates the flat buffers: parameters and gradients uninitialised (the model's init
  // writes them), buffers zero. No registration afterwards.
  void finalize();
  bool finalized() const { return finalized_; }

  // Views (valid after finalize). param/grad take a parameter id, buffer a buffer id.
  Tensor& param(Id id);
  Tensor& grad(Id id);
  Tensor& buffer(Id id);

  Tensor& params() { return params_; }
  Tensor& grads() { return grads_; }
  Tensor& buffers() { return buffers_; }
  // A device scalar 1.0 (shape {1}): BN layers add it to num_batches_tracked on the device,
  // so counting batches needs no host round trip.
  const Tensor& one() const { return one_; }

  // All entries in registration order, which is torchvision's state_dict order.
  const std::vector<StateEntry>& entries() const { return entries_; }
  std::optional<Id> find(const std::string& name) const;
  const StateEntry& entry(Id id) const { return entries_.at(id); }
  int64_t parameter_count() const { return param_elements_; }  // elements, not tensors
  // Elements of the flat buffer tensor, alignment gaps included.
  int64_t buffer_element_count() const { return buffer_elements_; }
  size_t parameter_tensor_count() const;
  size_t buffer_tensor_count() const;

  // f32 {parameter_count} on the device: 1 where weight decay applies, 0 where not. With
  // `exempt_bn_and_bias`, BN weights/biases and conv and linear biases get 0 (the common
  // "no decay on BN and bias" recipe); otherwise every element decays, as plain PyTorch SGD.
  Tensor make_decay_mask(bool exempt_bn_and_bias) const;

  // Host copies of one named tensor (parameter or buffer), for init, checkpoints, oracle.
  void write(const std::string& name, const float* host, size_t count);
  void read(const std::string& name, float* host, size_t count) const;
  void write(Id id, const float* host, size_t count);
  void read(Id id, float* host, size_t count) const;
  // Same for the gradient of a parameter.
  void read_grad(Id id, float* host, size_t count) const;

  // Whether backward computes parameter `id`'s gradient: trainable and not frozen now. A
  // parameter whose optimizer group is frozen (--freeze; train/param_groups.h) is set false,
  // as torch's requires_grad_(False): layers then skip the work only it needed, and autograd's
  // pruning follows where a model knows that nothing below a layer needs a gradient. Each
  // change bumps requires_grad_version(), so that a captured backward is captured again.
  bool requires_grad(Id id) const;
  void set_requires_grad(Id id, bool required);
  uint64_t requires_grad_version() const { return requires_grad_version_; }
  // Every layer's backward ends each of its parameters with this, whether it computed the
  // gradient or skipped it: a parameter that requires no gradient (fixed, or frozen now) has it
  // written as 0 (torch leaves it None; 0 keeps gradient norms and the NaN guard those of the
  // others). Then grad_ready(id), so the gradient reducer's buckets complete as always.
  void report_grad(Id id);

  Backend& backend() const { return backend_; }

  // Backward calls grad_ready(id) right after a layer has written parameter `id`'s gradient,
  // so the gradient reducer can start a bucket's allreduce while the rest of backward runs.
  // The hook runs on the calling thread, once per parameter per backward; none by default.
  using GradReadyHook = std::function<void(Id)>;
  void set_grad_ready_hook(GradReadyHook hook) { grad_ready_hook_ = std::move(hook); }
  // Removes the hook and hands it back (a captured backward must not call it).
  GradReadyHook take_grad_ready_hook() { return std::exchange(grad_ready_hook_, nullptr); }
  void grad_ready(Id id) const {
    if (grad_ready_hook_) grad_ready_hook_(id);
  }

  // --sync-bn: batch norm layers in training take their batch statistics over every rank
  // through this exchange (nn/sync_batchnorm.h). Null, or one rank: each rank's own batch, the
  // plain batch norm. Not owned; it must outlive the training forward and backward passes.
  void set_stats_exchange(StatsExchange* exchange) { stats_exchange_ = exchange; }
  StatsExchange* stats_exchange() const { return stats_exchange_; }

  // Multiply-adds of the convolutions and linear layers run by forward passes since the last
  // reset: benchmarks turn it into achieved GFLOP/s (forward + backward = 3x forward).
  void count_forward_macs(int64_t macs) { forward_macs_ += macs; }
  int64_t forward_macs() const { return forward_macs_; }
  // The same for backward passes, as run: a data or weight gradient that was skipped (the
  // first layer's input gradient, a frozen layer's) counts 0.
  void count_backward_macs(int64_t macs) { backward_macs_ += macs; }
  int64_t backward_macs() const { return backward_macs_; }
  void reset_macs() { forward_macs_ = backward_macs_ = 0; }

 private:
  static constexpr int64_t kBufferAlignment = 4;  // elements: 16 bytes of f32

  Id add_entry(StateEntry e);
  void check_finalized(const char* what) const;
  Tensor& view_of(Id id, StateKind kind, const char* what);

  Backend& backend_;
  std::vector<StateEntry> entries_;
  std::unordered_map<std::string, Id> by_name_;
  int64_t param_elements_ = 0;
  int64_t buffer_elements_ = 0;
  bool finalized_ = false;
  Tensor params_, grads_, buffers_, one_;
  std::vector<Tensor> param_views_, grad_views_, buffer_views_;  // indexed by Id
  std::vector<bool> frozen_;                                      // indexed by Id
  uint64_t requires_grad_version_ = 0;
  GradReadyHook grad_ready_hook_;
  StatsExchange* stats_exchange_ = nullptr;
  int64_t forward_macs_ = 0, backward_macs_ = 0;
};

}  // namespace dp::nn
