// Learning-rate schedules as pure functions of the global step (0-based: the lr used by the
// step-th optimizer update), so a resumed run recomputes the same lr from the step counter
// alone. Each reproduces a torch.optim.lr_scheduler class stepped once per iteration:
//   constant  : base_lr
//   step      : MultiStepLR, milestones in epochs, lr = base * gamma^(#milestones passed)
//   cosine    : CosineAnnealingLR over all steps, down to min_lr
//   piecewise : LambdaLR with lambda = np.interp(step, knots, factors): the knots are
//               floor(fraction * total_steps) (Python's int(), as the airbench scripts), the
//               factor flat before the first knot and after the last
//   linear-warmup-decay : piecewise through (0, start_factor), (warmup_fraction, 1) and
//               (1, end_factor): airbench's schedule
//   onecycle  : OneCycleLR (two phases, cos or linear anneal, pct_start, div_factor,
//               final_div_factor); base_lr plays max_lr. With cycle_momentum (torch's
//               default) make_momentum_schedule gives its momentum, max -> base -> max.
// Linear warm-up (LinearLR from warmup_start_factor to 1 over warmup_epochs) multiplies any of
// them, as ChainedScheduler does, but piecewise and linear-warmup-decay, which refuse it
// (torch's LambdaLR does not chain: its value would replace the product).
// step_unit "epoch" is torch's scheduler.step() once per epoch: every step of epoch e gets the
// value the per-step schedule built with one step per epoch has at step e (milestones and
// warm-up must then be whole epochs).
// This file knows the schedules themselves: their names (LrScheduleKind's table), parameters
// and which values each accepts. A refused spec throws LrScheduleError naming the parameter,
// which the command line maps to its option. The command line's side, which option sets which
// parameter and which schedule alone reads it, is lib/train/schedule_options.cpp; a schedule's
// line in the run's log, lib/train/schedule_callbacks.cpp's describe().
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/option_enum.h"

namespace dp::optim {

enum class LrScheduleKind { constant, step, cosine, piecewise, onecycle, linear_warmup_decay };
constexpr std::array<NamedValue<LrScheduleKind>, 6> enum_names(LrScheduleKind) {
  using K = LrScheduleKind;
  return {{{K::constant, "constant"},
           {K::step, "step"},
           {K::cosine, "cosine"},
           {K::piecewise, "piecewise"},
           {K::onecycle, "onecycle"},
           {K::linear_warmup_decay, "linear-warmup-decay"}}};
}

// onecycle's anneal strategy (OneCycleLR's anneal_strategy).
enum class Anneal { cos, linear };
constexpr std::array<NamedValue<Anneal>, 2> enum_names(Anneal) {
  return {{{Anneal::cos, "cos"}, {Anneal::linear, "linear"}}};
}

// How often a schedule moves (see above).
enum class StepUnit { step, epoch };
constexpr std::array<NamedValue<StepUnit>, 2> enum_names(StepUnit) {
  return {{{StepUnit::step, "step"}, {StepUnit::epoch, "epoch"}}};
}

// Far beyond any real run; keeps a milestone's conversion to steps in range.
constexpr double kMaxMilestoneEpochs = 1e6;

struct LrScheduleSpec {
  LrScheduleKind kind = LrScheduleKind::constant;
  double base_lr = 0.1;
  int64_t steps_per_epoch = 1;
  int64_t epochs = 1;
  // The run's length in steps, which cosine, onecycle and piecewise span (0: epochs *
  // steps_per_epoch); fewer than that with a fractional --epochs.
  int64_t total_steps = 0;
  // piecewise: (fraction of the run in [0, 1], LR factor), fractions ascending
  std::vector<std::pair<double, double>> points;
  // linear-warmup-decay
  double start_factor = 0.2, end_factor = 0.07, warmup_fraction = 0.23;
  // step
  std::vector<double> milestones;  // epochs in (0, kMaxMilestoneEpochs], ascending
  double gamma = 0.1;
  // cosine
  double min_lr = 0.0;
  // onecycle
  double pct_start = 0.3;
  double div_factor = 25.0;
  double final_div_factor = 1e4;
  Anneal anneal = Anneal::cos;
  bool cycle_momentum = true;
  double base_momentum = 0.85, max_momentum = 0.95;
  StepUnit step_unit = StepUnit::step;
  // warm-up (every schedule but piecewise and linear-warmup-decay)
  double warmup_epochs = 0.0;
  double warmup_start_factor = 0.1;
};

class LrSchedule {
 public:
  virtual ~LrSchedule() = default;
  virtual double lr(int64_t step) const = 0;
};

// A spec the schedules refuse: `parameter` is the LrScheduleSpec field at fault (its name as
// written there), `reason` what it must be; a reason that names another field writes it in
// braces ("must be in [0, {base_lr}]"), so that each caller can name the fields as its users
// know them (the command line: by their options).
struct LrScheduleError : UsageError {
  LrScheduleError(std::string parameter, std::string reason);
  // `reason` with each {field} replaced by name(field).
  std::string reason_naming(const std::function<std::string(const std::string&)>& name) const;
  std::string parameter, reason;
};

// The step a point `epochs` into the run falls on (rounded to the nearest): where a milestone
// moves the schedule.
int64_t epochs_to_steps(double epochs, int64_t steps_per_epoch);

// Every check of the spec but those the run's length in steps decides: the parameters the named
// schedule reads and the warm-up's. Throws LrScheduleError.
void check_lr_schedule_spec(const LrScheduleSpec& spec);
// check_lr_schedule_spec, then the schedule over the run's length; throws LrScheduleError
// where the length makes it impossible (points or warm-up that round to the same step).
std::unique_ptr<LrSchedule> make_lr_schedule(const LrScheduleSpec& spec);
// The momentum every parameter group gets at each step (lr(step) is the momentum there), or
// null when the schedule keeps each group's own momentum (all but onecycle with
// cycle_momentum). Throws LrScheduleError as make_lr_schedule does.
std::unique_ptr<LrSchedule> make_momentum_schedule(const LrScheduleSpec& spec);

}  // namespace dp::optim
