// Parameter groups from rules over the model's named parameters: a recipe says which
// parameters a group takes (by role or name) and with which hyper-parameters, and
// assign_param_groups turns that into the Optimizer's ranges of the flat buffer.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "nn/parameter_store.h"
#include "optim/optimizer.h"
#include "train/config.h"

namespace dp {

struct ParamGroupRule {
  optim::ParamGroup group;  // name and hyper-parameters; the ranges are filled in
  // Which parameters the group takes; null: every parameter no earlier rule took.
  std::function<bool(const nn::StateEntry&)> takes;
};

// Each trainable parameter goes to the first rule that takes it (a fixed one to none);
// neighbouring parameters of one group merge into one range. Throws UsageError naming a
// parameter that no rule takes.
std::vector<optim::ParamGroup> assign_param_groups(const nn::ParameterStore& store,
                                                   const std::vector<ParamGroupRule>& rules);

// Why rule `index` took no parameter, for an error message: "matches no parameter", or that
// every parameter it matches went to an earlier rule (naming that group) or is fixed by the model.
std::string why_no_parameters(const nn::ParameterStore& store,
                              const std::vector<ParamGroupRule>& rules, size_t index);

// The store's requires_grad from the groups, as torch's requires_grad_ on a frozen group's
// parameters: false for a parameter in a frozen group, true for one in any other. The
// training step calls it before each forward, after the step callbacks have frozen groups.
void apply_frozen_groups(const std::vector<optim::ParamGroup>& groups, nn::ParameterStore& store);

// The group --freeze PATTERN[:EPOCHS] makes: freeze_group_name(PATTERN), frozen from the start
// when after_epochs is 0 (the FreezeCallback thaws nothing; it freezes after the epochs).
inline constexpr std::string_view kFreezeGroupPrefix = "freeze:";
inline std::string freeze_group_name(const std::string& pattern) {
  return std::string(kFreezeGroupPrefix) + pattern;
}
ParamGroupRule freeze_param_group(const FreezeSpec& spec, const TrainConfig& config);

// The configured run's groups before the default: one per --freeze value, then with
// --bn-bias-lr-factor F != 1 group "bn_bias" (every BN bias) at lr_factor F and weight decay
// --weight-decay / F. Torch's SGD adds wd * w to the gradient (coupled decay), so the decay
// step of a parameter is lr * lr_factor * weight_decay * w: lr * wd * w in both groups.
std::vector<ParamGroupRule> configured_param_groups(const TrainConfig& config);

// The configured run's last rule: group "default" takes every parameter left, with
// --momentum, --nesterov and --weight-decay (--no-decay-bn-bias is the decay mask's).
ParamGroupRule default_param_group(const TrainConfig& config);

}  // namespace dp
