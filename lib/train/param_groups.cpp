#include "train/param_groups.h"

#include <fnmatch.h>

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

std::string why_no_parameters(const nn::ParameterStore& store,
                              const std::vector<ParamGroupRule>& rules, size_t index) {
  const ParamGroupRule& rule = rules[index];
  std::string fixed, taken;  // the first parameter of each kind it matches
  for (const nn::StateEntry& entry : store.entries()) {
    if (entry.kind != nn::StateKind::parameter || (rule.takes && !rule.takes(entry))) continue;
    if (!entry.trainable && fixed.empty())
      fixed = fmt::format("the model keeps fixed ({})", entry.name);
    else if (entry.trainable && taken.empty())
      taken = fmt::format("an earlier group took ({} in group '{}')", entry.name,
                          rules[rule_for(entry, rules)].group.name);
  }
  if (fixed.empty() && taken.empty()) return "matches no parameter";
  return "matches only parameters " + (fixed.empty()   ? taken
                                       : taken.empty() ? fixed
                                                       : fixed + " or " + taken);
}

void apply_frozen_groups(const std::vector<optim::ParamGroup>& groups, nn::ParameterStore& store) {
  const auto in_range = [](const nn::StateEntry& e, const optim::ParamRange& r) {
    return e.offset >= r.offset && e.offset < r.offset + r.numel;
  };
  for (nn::ParameterStore::Id id = 0; id < store.entries().size(); ++id) {
    const nn::StateEntry& entry = store.entry(id);
    if (entry.kind != nn::StateKind::parameter || !entry.trainable) continue;
    bool frozen = false;
    for (const optim::ParamGroup& group : groups)
      for (const optim::ParamRange& range : group.ranges)
        if (in_range(entry, range)) frozen = group.frozen;
    store.set_requires_grad(id, !frozen);
  }
}

ParamGroupRule freeze_param_group(const FreezeSpec& spec, const TrainConfig& config) {
  ParamGroupRule rule = default_param_group(config);
  rule.group.name = freeze_group_name(spec.pattern);
  rule.group.frozen = spec.after_epochs == 0;
  rule.takes = [pattern = spec.pattern](const nn::StateEntry& e) {
    return fnmatch(pattern.c_str(), e.name.c_str(), 0) == 0;
  };
  return rule;
}

std::vector<ParamGroupRule> configured_param_groups(const TrainConfig& config) {
  std::vector<ParamGroupRule> rules;
  for (const std::string& value : config.freeze)
    rules.push_back(freeze_param_group(parse_freeze(value), config));
  if (config.bn_bias_lr_factor != 1.0) {
    ParamGroupRule rule = default_param_group(config);
    rule.group.name = "bn_bias";
    rule.group.lr_factor = config.bn_bias_lr_factor;
    rule.group.weight_decay = static_cast<float>(config.weight_decay / config.bn_bias_lr_factor);
    rule.takes = [](const nn::StateEntry& e) { return e.param_role == nn::ParamRole::bn_bias; };
    rules.push_back(rule);
  }
  return rules;
}

ParamGroupRule default_param_group(const TrainConfig& config) {
  ParamGroupRule rule;
  rule.group.name = "default";
  rule.group.momentum = config.momentum;
  rule.group.dampening = config.dampening;
  rule.group.nesterov = config.nesterov;
  rule.group.weight_decay = static_cast<float>(config.weight_decay);
  return rule;
}

}  // namespace dp
