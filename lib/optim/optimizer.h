// The training optimizer: SGD (PyTorch semantics, see optim/sgd.h) over parameter groups, as
// torch.optim.SGD's param_groups. Each group owns ranges of the model's flat parameter buffer
// and has its own learning-rate factor, momentum, Nesterov flag and weight decay, and can be
// frozen (no update; the training step then marks its parameters as requiring no gradient:
// train/param_groups.h apply_frozen_groups). One flat momentum buffer
// covers every parameter, so checkpoints save it whole whatever the grouping.
//
// Invariant: the groups' ranges are disjoint. A single group covering the whole buffer
// updates it with one backend call, exactly as optim::Sgd does.
#pragma once

#include <string>
#include <vector>

#include "backend/backend.h"
#include "core/tensor.h"

namespace dp::optim {

// Throws UsageError for a negative momentum or weight decay, or Nesterov without momentum or
// with dampening (torch.optim.SGD's checks).
void check_sgd_hyper(const SgdHyper& hyper);
// DP_CHECK: `grads` and a defined `decay_mask` have as many elements as `params`.
void check_flat_buffers(const Tensor& params, const Tensor& grads, const Tensor& decay_mask);

// Elements [offset, offset + numel) of the flat parameter buffer.
struct ParamRange {
  int64_t offset = 0, numel = 0;
};

struct ParamGroup {
  std::string name = "default";
  std::vector<ParamRange> ranges;  // ascending, disjoint
  double lr_factor = 1.0;          // the group's rate = the optimizer's rate * lr_factor
  float momentum = 0.9f;
  double dampening = 0.0;          // torch's: not applied on the buffer's first update
  float weight_decay = 0.0f;       // on the elements the decay mask selects
  bool nesterov = false;
  bool frozen = false;
};

class Optimizer {
 public:
  // `params` and `grads` are the model's flat buffers (held as views, not copied);
  // `decay_mask` selects the elements that get weight decay (undefined = all). Throws
  // UsageError for a group with invalid hyper-parameters, DP_CHECK for overlapping ranges.
  Optimizer(Backend& backend, Tensor params, Tensor grads, Tensor decay_mask,
            std::vector<ParamGroup> groups, double lr);

  // The rate of a group with lr_factor 1; the LR schedule sets it before each step.
  void set_lr(double lr) { lr_ = lr; }
  double lr() const { return lr_; }
  // One update of every group that is not frozen. The first one creates the momentum buffer
  // as torch.optim.SGD does (buf = d, see SgdHyper::first_step).
  void step();
  // Updates done so far; a resumed run sets the steps up to its last update (set_updates),
  // 0 exactly where no update was done: all that the first-update rule reads. It is
  // optimizer-wide: a group frozen through the first update does not get the rule when it
  // thaws (torch keys it per parameter).
  int64_t updates() const { return updates_; }
  void set_updates(int64_t updates) { updates_ = updates; }

  std::vector<ParamGroup>& groups() { return groups_; }
  // Throws UsageError naming the groups when there is none called `name`.
  ParamGroup& group(const std::string& name);
  // The flat parameter buffer the groups' ranges index (read-only: a test's view of a step).
  const Tensor& params() const { return params_; }
  Tensor& momentum_buffer() { return momentum_; }
  const Tensor& momentum_buffer() const { return momentum_; }

 private:
  void update(const SgdHyper& h, const ParamRange& range);
  Tensor slice(Tensor& flat, const ParamRange& range) const;

  Backend& backend_;
  Tensor params_, grads_, decay_mask_, momentum_;
  std::vector<ParamGroup> groups_;
  double lr_;
  int64_t updates_ = 0;
};

}  // namespace dp::optim
