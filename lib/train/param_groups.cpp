#include "train/param_groups.h"

#include "core/error.h"

namespace dp {

namespace {

size_t rule_for(const nn::StateEntry& entry, const std::vector<ParamGroupRule>& rules) {
  for (size_t r = 0; r < rules.size(); ++r)
    if (!rules[r].takes || rules[r].takes(entry)) return r;
  throw UsageError(fmt::format("parameter {} is in no parameter group", entry.name));
}

void append_range(std::vector<optim::ParamRange>& ranges, const nn::StateEntry& entry) {
  if (!ranges.empty() && ranges.back().offset + ranges.back().numel == entry.offset)
    ranges.back().numel += entry.numel();
  else
    ranges.push_back({entry.offset, entry.numel()});
}

}  // namespace

std::vector<optim::ParamGroup> assign_param_groups(const nn::ParameterStore& store,
                                                   const std::vector<ParamGroupRule>& rules) {
  std::vector<optim::ParamGroup> groups;
  for (const ParamGroupRule& rule : rules) {
    groups.push_back(rule.group);
    groups.back().ranges.clear();
  }
  // A parameter the model keeps fixed (StateEntry::trainable false) goes to no group: the
  // optimizer never moves it, as torch.optim never sees a parameter without requires_grad.
  for (const nn::StateEntry& entry : store.entries())
    if (entry.kind == nn::StateKind::parameter && entry.trainable)
      append_range(groups[rule_for(entry, rules)].ranges, entry);
  return groups;
}

ParamGroupRule default_param_group(const TrainConfig& config) {
  ParamGroupRule rule;
  rule.group.name = "default";
  rule.group.momentum = config.momentum;
  rule.group.dampening = config.dampening;
  rule.group.nesterov = config.nesterov;
  rule.group.weight_decay = config.weight_decay;
  return rule;
}

}  // namespace dp
