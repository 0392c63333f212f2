// GroupRecorder: a step callback of oracle_trajectory that records, for every step and every
// optimizer group, what the step used and what it did, so torch_trajectory_airbench.py can
// hold them against the recipe's description:
//   /groups (attribute names): lr {S,G} the group's rate as SGD takes it (float of the
//   optimizer's rate x lr_factor), frozen {S,G}, change {S,G} the largest |change| of the
//   group's parameters over the step, and per group its momentum, nesterov and weight_decay.
// It sees a step after the LR schedule and --freeze callbacks set it up, and after Lookahead
// has run on it: train() calls a recipe's callbacks last, so `change` includes a Lookahead
// update at the steps that have one. CPU only: it reads the flat parameter buffer in place.
// A test tool, not part of the application.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "io/hdf5.h"
#include "train/step_callback.h"

namespace dp {

struct GroupLog {
  std::vector<std::string> names;
  std::vector<float> momentum, weight_decay;
  std::vector<uint8_t> nesterov;
  std::vector<float> lr, change;  // {steps, groups}, row by row
  std::vector<uint8_t> frozen;    // {steps, groups}

  void write(h5::Group out) const {
    const hsize_t g = names.size(), s = g ? lr.size() / g : 0;
    out.set_attribute("names", names);
    out.write<float>("momentum", {g}, momentum.data());
    out.write<float>("weight_decay", {g}, weight_decay.data());
    out.write<uint8_t>("nesterov", {g}, nesterov.data());
    out.write<float>("lr", {s, g}, lr.data());
    out.write<uint8_t>("frozen", {s, g}, frozen.data());
    out.write<float>("change", {s, g}, change.data());
  }
};

class GroupRecorder final : public StepCallback {
 public:
  explicit GroupRecorder(GroupLog& log) : log_(log) {}

  void before_step(const StepPosition&, optim::Optimizer& optimizer) override {
    if (log_.names.empty())
      for (const optim::ParamGroup& g : optimizer.groups()) {
        log_.names.push_back(g.name);
        log_.momentum.push_back(g.momentum);
        log_.weight_decay.push_back(g.weight_decay);
        log_.nesterov.push_back(g.nesterov ? 1 : 0);
      }
    for (const optim::ParamGroup& g : optimizer.groups()) {
      log_.lr.push_back(static_cast<float>(optimizer.lr() * g.lr_factor));
      log_.frozen.push_back(g.frozen ? 1 : 0);
    }
    const float* params = optimizer.params().data<float>();
    before_.assign(params, params + optimizer.params().numel());
  }

  void after_step(const StepPosition&, optim::Optimizer& optimizer, bool) override {
    const float* params = optimizer.params().data<float>();
    for (const optim::ParamGroup& g : optimizer.groups()) {
      float largest = 0;
      for (const optim::ParamRange& r : g.ranges)
        for (int64_t i = r.offset; i < r.offset + r.numel; ++i)
          largest = std::max(largest, std::abs(params[i] - before_[i]));
      log_.change.push_back(largest);
    }
  }

 private:
  GroupLog& log_;
  std::vector<float> before_;
};

}  // namespace dp
