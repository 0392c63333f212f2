#include "optim/lr_schedule.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <numbers>

#include "core/error.h"

namespace dp::optim {

namespace {

// `reason` with each {field} replaced by name(field). Reasons hold no braces of their own (no
// user text: the schedule's name is an enum).
std::string with_fields_named(const std::string& reason,
                              const std::function<std::string(const std::string&)>& name) {
  std::string out;
  for (size_t at = 0; at < reason.size(); ++at) {
    const char c = reason[at];
    if (const size_t close = reason.find('}', at); c == '{' && close != std::string::npos) {
      out += name(reason.substr(at + 1, close - at - 1));
      at = close;
    } else {
      out += c;
    }
  }
  return out;
}

std::string as_written(const std::string& field) { return field; }

}  // namespace

LrScheduleError::LrScheduleError(std::string parameter_in, std::string reason_in)
    : UsageError(fmt::format("lr schedule: {} {}", parameter_in,
                             with_fields_named(reason_in, as_written))),
      parameter(std::move(parameter_in)),
      reason(std::move(reason_in)) {}

std::string LrScheduleError::reason_naming(
    const std::function<std::string(const std::string&)>& name) const {
  return with_fields_named(reason, name);
}

int64_t epochs_to_steps(double epochs, int64_t steps_per_epoch) {
  return static_cast<int64_t>(std::llround(epochs * static_cast<double>(steps_per_epoch)));
}

namespace {

class ConstantLr : public LrSchedule {
 public:
  explicit ConstantLr(double base) : base_(base) {}
  double lr(int64_t) const override { return base_; }

 private:
  double base_;
};

class MultiStepLr : public LrSchedule {
 public:
  MultiStepLr(double base, double gamma, std::vector<int64_t> milestone_steps)
      : base_(base), gamma_(gamma), milestones_(std::move(milestone_steps)) {}
  double lr(int64_t step) const override {
    int passed = 0;
    for (int64_t m : milestones_) passed += step >= m;
    return base_ * std::pow(gamma_, passed);
  }

 private:
  double base_, gamma_;
  std::vector<int64_t> milestones_;
};

class CosineLr : public LrSchedule {
 public:
  CosineLr(double base, double min_lr, int64_t total_steps)
      : base_(base), min_(min_lr), total_(total_steps) {}
  double lr(int64_t step) const override {
    double t = static_cast<double>(std::min(step, total_));
    return min_ + (base_ - min_) * (1.0 + std::cos(std::numbers::pi * t / total_)) / 2.0;
  }

 private:
  double base_, min_;
  int64_t total_;
};

// OneCycleLR's two phases: the first ends at pct_start * total - 1 (possibly fractional, as
// torch), the second at total - 1; past the end the values stay at the second's end.
class OneCycle {
 public:
  OneCycle(int64_t total_steps, double pct_start, bool cos)
      : phase1_end_(pct_start * static_cast<double>(total_steps) - 1.0),
        phase2_end_(static_cast<double>(total_steps) - 1.0),
        cos_(cos) {}
  // start -> peak over phase 1, peak -> end over phase 2.
  double value(int64_t step, double start, double peak, double end) const {
    double s = std::min(static_cast<double>(step), phase2_end_);
    if (s <= phase1_end_) return anneal(start, peak, s / phase1_end_);
    return anneal(peak, end, (s - phase1_end_) / (phase2_end_ - phase1_end_));
  }

 private:
  double anneal(double start, double end, double pct) const {
    if (cos_) return end + (start - end) / 2.0 * (std::cos(std::numbers::pi * pct) + 1.0);
    return (end - start) * pct + start;
  }
  double phase1_end_, phase2_end_;
  bool cos_;
};

class OneCycleLr : public LrSchedule {
 public:
  OneCycleLr(OneCycle cycle, double max_lr, double div_factor, double final_div_factor)
      : cycle_(cycle),
        max_(max_lr),
        initial_(max_lr / div_factor),
        final_(max_lr / div_factor / final_div_factor) {}
  double lr(int64_t step) const override { return cycle_.value(step, initial_, max_, final_); }

 private:
  OneCycle cycle_;
  double max_, initial_, final_;
};

// OneCycleLR's cycle_momentum: against the LR, max -> base at the LR's peak -> max.
class OneCycleMomentum : public LrSchedule {
 public:
  OneCycleMomentum(OneCycle cycle, double base, double max)
      : cycle_(cycle), base_(base), max_(max) {}
  double lr(int64_t step) const override { return cycle_.value(step, max_, base_, max_); }

 private:
  OneCycle cycle_;
  double base_, max_;
};

// LambdaLR(lambda s: np.interp(s, knots, factors)), numpy's interpolation arithmetic.
class PiecewiseLr : public LrSchedule {
 public:
  PiecewiseLr(double base, std::vector<int64_t> knots, std::vector<double> factors)
      : base_(base), knots_(std::move(knots)), factors_(std::move(factors)) {}
  double lr(int64_t step) const override { return base_ * factor(step); }

 private:
  double factor(int64_t step) const {
    if (step <= knots_.front()) return factors_.front();
    if (step >= knots_.back()) return factors_.back();
    size_t j = 0;
    while (knots_[j + 1] <= step) ++j;  // knots_[j] <= step < knots_[j + 1]
    if (knots_[j] == step) return factors_[j];
    const double slope = (factors_[j + 1] - factors_[j]) / double(knots_[j + 1] - knots_[j]);
    return slope * double(step - knots_[j]) + factors_[j];
  }
  double base_;
  std::vector<int64_t> knots_;
  std::vector<double> factors_;
};

// torch's scheduler.step() once per epoch: every step of epoch e takes the per-epoch
// schedule's value at e.
class PerEpoch : public LrSchedule {
 public:
  PerEpoch(std::unique_ptr<LrSchedule> per_epoch, int64_t steps_per_epoch)
      : inner_(std::move(per_epoch)), steps_per_epoch_(steps_per_epoch) {}
  double lr(int64_t step) const override { return inner_->lr(step / steps_per_epoch_); }

 private:
  std::unique_ptr<LrSchedule> inner_;
  int64_t steps_per_epoch_;
};

class WarmupLr : public LrSchedule {
 public:
  WarmupLr(std::unique_ptr<LrSchedule> inner, double start_factor, int64_t warmup_steps)
      : inner_(std::move(inner)), start_(start_factor), steps_(warmup_steps) {}
  double lr(int64_t step) const override {
    double t = static_cast<double>(std::min(step, steps_));
    double factor = start_ + (1.0 - start_) * t / static_cast<double>(steps_);
    return factor * inner_->lr(step);
  }

 private:
  std::unique_ptr<LrSchedule> inner_;
  double start_;
  int64_t steps_;
};

// The steps the schedule spans: the run's (total_steps), else whole epochs.
int64_t run_length(const LrScheduleSpec& s) {
  return s.total_steps > 0 ? s.total_steps : s.epochs * s.steps_per_epoch;
}

void require(bool ok, const char* parameter, const std::string& reason) {
  if (!ok) throw LrScheduleError(parameter, reason);
}

bool whole(double epochs) { return epochs == std::floor(epochs); }

void check_step(const LrScheduleSpec& s) {
  require(s.gamma > 0 && std::isfinite(s.gamma), "gamma", "must be positive and finite");
  for (size_t i = 0; i < s.milestones.size(); ++i) {
    const double m = s.milestones[i];
    if (!(m > 0 && m <= kMaxMilestoneEpochs && (i == 0 || m >= s.milestones[i - 1])))
      throw LrScheduleError("milestones",
                            fmt::format("must be in (0, {}] and in order (a repeated one applies "
                                        "the factor twice, as MultiStepLR's)",
                                        kMaxMilestoneEpochs));
    // One at or past the run's end is never reached, as with torch's MultiStepLR.
    require(s.step_unit != StepUnit::epoch || whole(m), "milestones",
            "must be whole epochs when {step_unit} is epoch");
  }
}

void check_onecycle(const LrScheduleSpec& s) {
  require(s.pct_start > 0 && s.pct_start < 1, "pct_start", "must be in (0, 1)");
  require(s.base_momentum >= 0 && s.base_momentum < 1, "base_momentum", "must be in [0, 1)");
  require(s.max_momentum >= 0 && s.max_momentum < 1, "max_momentum", "must be in [0, 1)");
  require(s.div_factor > 0 && std::isfinite(s.div_factor), "div_factor",
          "must be positive and finite");
  require(s.final_div_factor > 0 && std::isfinite(s.final_div_factor), "final_div_factor",
          "must be positive and finite");
}

void check_points(const std::vector<std::pair<double, double>>& points, const char* parameter) {
  require(!points.empty(), parameter, "needs at least one point");
  for (size_t i = 0; i < points.size(); ++i) {
    const auto [fraction, factor] = points[i];
    require(fraction >= 0 && fraction <= 1 && (i == 0 || fraction > points[i - 1].first) &&
                factor >= 0 && std::isfinite(factor),
            parameter, "fractions must ascend within [0, 1] and factors be finite and >= 0");
  }
}

void check_linear_warmup_decay(const LrScheduleSpec& s) {
  require(s.start_factor >= 0 && std::isfinite(s.start_factor), "start_factor",
          "must be finite and >= 0");
  require(s.end_factor >= 0 && std::isfinite(s.end_factor), "end_factor",
          "must be finite and >= 0");
  require(s.warmup_fraction > 0 && s.warmup_fraction < 1, "warmup_fraction", "must be in (0, 1)");
}

void check_warmup(const LrScheduleSpec& s) {
  require(s.warmup_epochs >= 0 && s.warmup_epochs < double(s.epochs), "warmup_epochs",
          "must be in [0, {epochs})");
  require(s.step_unit != StepUnit::epoch || whole(s.warmup_epochs), "warmup_epochs",
          "must be whole when {step_unit} is epoch");
  require(s.warmup_start_factor > 0 && s.warmup_start_factor <= 1, "warmup_start_factor",
          "must be in (0, 1]");
  // torch's LambdaLR does not chain: beside a LinearLR warm-up its value replaces the chain's
  // instead of multiplying it. These schedules warm up through their own points.
  require(s.warmup_epochs == 0 || (s.kind != LrScheduleKind::piecewise &&
                                   s.kind != LrScheduleKind::linear_warmup_decay),
          "warmup_epochs",
          fmt::format("is not for the {} schedule, which warms up through its own points",
                      enum_name(s.kind)));
}

std::unique_ptr<LrSchedule> make_multistep(const LrScheduleSpec& s) {
  std::vector<int64_t> steps;
  for (double m : s.milestones) steps.push_back(epochs_to_steps(m, s.steps_per_epoch));
  return std::make_unique<MultiStepLr>(s.base_lr, s.gamma, std::move(steps));
}

OneCycle make_onecycle(const LrScheduleSpec& s) {
  const int64_t total_steps = run_length(s);
  if (total_steps < 2)
    throw LrScheduleError(
        "total_steps", fmt::format("onecycle needs at least 2 steps; the run has {}", total_steps));
  if (!(s.pct_start * double(total_steps) - 1.0 > 0))
    throw LrScheduleError(
        "pct_start", fmt::format("must be above 1/{0} (of the run's {0} steps): onecycle's warm-up "
                                 "phase needs more than one step",
                                 total_steps));
  return OneCycle(total_steps, s.pct_start, s.anneal == Anneal::cos);
}

// Each point's knot is int(fraction x length), Python's truncation as the airbench scripts; two
// points on one knot would make np.interp's segment between them empty.
std::unique_ptr<LrSchedule> make_piecewise(const LrScheduleSpec& s,
                                           const std::vector<std::pair<double, double>>& points,
                                           const char* parameter) {
  const int64_t length = run_length(s);
  const char* unit = s.step_unit == StepUnit::epoch ? "epochs" : "steps";
  std::vector<int64_t> knots;
  std::vector<double> factors;
  for (const auto& [fraction, factor] : points) {
    const auto knot = static_cast<int64_t>(fraction * double(length));
    if (!knots.empty() && knot <= knots.back())
      throw LrScheduleError(
          parameter, fmt::format("fractions {} and {} of this run's {} {} fall on {} {} and {} "
                                 "(int(fraction x {})); the points need strictly ascending {}",
                                 points[knots.size() - 1].first, fraction, length, unit, unit,
                                 knots.back(), knot, length, unit));
    knots.push_back(knot);
    factors.push_back(factor);
  }
  return std::make_unique<PiecewiseLr>(s.base_lr, std::move(knots), std::move(factors));
}

// The schedule without warm-up, stepped per optimizer step.
std::unique_ptr<LrSchedule> make_base(const LrScheduleSpec& s) {
  switch (s.kind) {
    case LrScheduleKind::constant:
      return std::make_unique<ConstantLr>(s.base_lr);
    case LrScheduleKind::step:
      return make_multistep(s);
    case LrScheduleKind::cosine:
      return std::make_unique<CosineLr>(s.base_lr, s.min_lr, run_length(s));
    case LrScheduleKind::piecewise:
      return make_piecewise(s, s.points, "points");
    case LrScheduleKind::linear_warmup_decay:
      return make_piecewise(s,
                            {{0.0, s.start_factor}, {s.warmup_fraction, 1.0}, {1.0, s.end_factor}},
                            "warmup_fraction");  // the only knot the user places
    case LrScheduleKind::onecycle:
      return std::make_unique<OneCycleLr>(make_onecycle(s), s.base_lr, s.div_factor,
                                          s.final_div_factor);
  }
  DP_CHECK(false, "schedule kind {} has no maker", static_cast<int>(s.kind));
  return nullptr;
}

std::unique_ptr<LrSchedule> make_per_step(const LrScheduleSpec& s) {
  std::unique_ptr<LrSchedule> schedule = make_base(s);
  const int64_t warmup_steps = epochs_to_steps(s.warmup_epochs, s.steps_per_epoch);
  if (s.warmup_epochs > 0 && warmup_steps == 0)
    throw LrScheduleError(
        "warmup_epochs",
        fmt::format("{} epochs of {} steps round to no step (one step is 1/{} epochs)",
                    s.warmup_epochs, s.steps_per_epoch, s.steps_per_epoch));
  if (warmup_steps > 0)
    schedule = std::make_unique<WarmupLr>(std::move(schedule), s.warmup_start_factor, warmup_steps);
  return schedule;
}

// The spec of the same schedule with one step per epoch (step_unit "epoch").
LrScheduleSpec per_epoch_spec(const LrScheduleSpec& s) {
  LrScheduleSpec e = s;
  e.steps_per_epoch = 1;
  e.total_steps = 0;  // the epochs
  return e;
}

}  // namespace

void check_lr_schedule_spec(const LrScheduleSpec& s) {
  require(s.base_lr >= 0 && std::isfinite(s.base_lr), "base_lr", "must be finite and not negative");
  require(s.steps_per_epoch >= 1, "steps_per_epoch", "must be at least 1");
  require(s.epochs >= 1, "epochs", "must be at least 1");
  check_warmup(s);
  if (s.kind == LrScheduleKind::step) check_step(s);
  if (s.kind == LrScheduleKind::cosine)
    require(s.min_lr >= 0 && s.min_lr <= s.base_lr, "min_lr", "must be in [0, {base_lr}]");
  if (s.kind == LrScheduleKind::onecycle) check_onecycle(s);
  if (s.kind == LrScheduleKind::piecewise) check_points(s.points, "points");
  if (s.kind == LrScheduleKind::linear_warmup_decay) check_linear_warmup_decay(s);
}

std::unique_ptr<LrSchedule> make_lr_schedule(const LrScheduleSpec& s) {
  check_lr_schedule_spec(s);
  if (s.step_unit == StepUnit::step) return make_per_step(s);
  return std::make_unique<PerEpoch>(make_per_step(per_epoch_spec(s)), s.steps_per_epoch);
}

std::unique_ptr<LrSchedule> make_momentum_schedule(const LrScheduleSpec& s) {
  check_lr_schedule_spec(s);
  if (s.kind != LrScheduleKind::onecycle || !s.cycle_momentum) return nullptr;
  const LrScheduleSpec e = s.step_unit == StepUnit::step ? s : per_epoch_spec(s);
  auto m = std::make_unique<OneCycleMomentum>(make_onecycle(e), s.base_momentum, s.max_momentum);
  if (s.step_unit == StepUnit::step) return m;
  return std::make_unique<PerEpoch>(std::move(m), s.steps_per_epoch);
}

}  // namespace dp::optim
