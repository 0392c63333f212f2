#include "optim/lr_schedule.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "core/error.h"

namespace dp::optim {

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

std::unique_ptr<LrSchedule> make_multistep(const LrScheduleSpec& s) {
  if (!(s.gamma > 0)) throw UsageError("lr schedule 'step': gamma must be > 0");
  std::vector<int64_t> steps;
  for (double m : s.milestones) {
    if (m < 0) throw UsageError("lr schedule 'step': milestones must be >= 0 epochs");
    if (!steps.empty() && epochs_to_steps(m, s.steps_per_epoch) < steps.back())
      throw UsageError("lr schedule 'step': milestones must be ascending");
    steps.push_back(epochs_to_steps(m, s.steps_per_epoch));
  }
  return std::make_unique<MultiStepLr>(s.base_lr, s.gamma, std::move(steps));
}

OneCycle make_onecycle(const LrScheduleSpec& s) {
  const int64_t total_steps = run_length(s);
  if (total_steps < 2) throw UsageError("lr schedule 'onecycle': needs at least 2 steps");
  if (!(s.pct_start > 0 && s.pct_start < 1))
    throw UsageError("lr schedule 'onecycle': pct_start must be in (0, 1)");
  if (s.pct_start * total_steps - 1.0 <= 0)
    throw UsageError("lr schedule 'onecycle': pct_start * total steps must exceed 1");
  if (!(s.div_factor > 0) || !(s.final_div_factor > 0))
    throw UsageError("lr schedule 'onecycle': div factors must be > 0");
  if (s.anneal != "cos" && s.anneal != "linear")
    throw UsageError("lr schedule 'onecycle': anneal must be 'cos' or 'linear', got '" +
                     s.anneal + "'");
  return OneCycle(total_steps, s.pct_start, s.anneal == "cos");
}

// Each point's knot is int(fraction x length), Python's truncation as the airbench scripts; two
// points on one knot would make np.interp's segment between them empty.
std::unique_ptr<LrSchedule> make_piecewise(const LrScheduleSpec& s, int64_t length) {
  const std::string& option = s.points_option;
  if (s.points.empty()) throw UsageError("option " + option + ": needs at least one point");
  const char* unit = s.step_unit == "epoch" ? "epochs" : "steps";
  std::vector<int64_t> knots;
  std::vector<double> factors;
  for (const auto& [fraction, factor] : s.points) {
    if (!(fraction >= 0 && fraction <= 1) || !(factor >= 0))
      throw UsageError("option " + option +
                       ": each point needs a fraction in [0, 1] and a factor >= 0");
    const auto knot = static_cast<int64_t>(fraction * double(length));
    if (!knots.empty() && knot <= knots.back())
      throw UsageError(
          fmt::format("option {}: fractions {} and {} of this run's {} {} fall on {} {} and {} "
                      "(int(fraction x {})); the points need strictly ascending {}",
                      option, s.points[knots.size() - 1].first, fraction, length, unit, unit,
                      knots.back(), knot, length, unit));
    knots.push_back(knot);
    factors.push_back(factor);
  }
  return std::make_unique<PiecewiseLr>(s.base_lr, std::move(knots), std::move(factors));
}

// The schedule without warm-up, stepped per optimizer step.
std::unique_ptr<LrSchedule> make_base(const LrScheduleSpec& s) {
  const int64_t total_steps = run_length(s);
  if (s.name == "constant") return std::make_unique<ConstantLr>(s.base_lr);
  if (s.name == "step") return make_multistep(s);
  if (s.name == "cosine") {
    if (total_steps < 1) throw UsageError("lr schedule 'cosine': epochs must be >= 1");
    if (s.min_lr < 0 || s.min_lr > s.base_lr)
      throw UsageError("lr schedule 'cosine': min lr must be in [0, base lr]");
    return std::make_unique<CosineLr>(s.base_lr, s.min_lr, total_steps);
  }
  if (s.name == "piecewise") return make_piecewise(s, total_steps);
  if (s.name == "onecycle")
    return std::make_unique<OneCycleLr>(make_onecycle(s), s.base_lr, s.div_factor,
                                        s.final_div_factor);
  throw UsageError("unknown lr schedule '" + s.name +
                   "' (known: constant, step, cosine, onecycle, piecewise)");
}

std::unique_ptr<LrSchedule> make_per_step(const LrScheduleSpec& s) {
  std::unique_ptr<LrSchedule> schedule = make_base(s);
  if (s.warmup_epochs < 0) throw UsageError("lr schedule: warm-up epochs must be >= 0");
  int64_t warmup_steps = epochs_to_steps(s.warmup_epochs, s.steps_per_epoch);
  if (s.warmup_epochs > 0 && warmup_steps == 0)
    throw UsageError(fmt::format(
        "option --warmup-epochs: {} epochs of {} steps round to no step (one step is 1/{} "
        "epochs)",
        s.warmup_epochs, s.steps_per_epoch, s.steps_per_epoch));
  if (warmup_steps > 0) {
    if (!(s.warmup_start_factor > 0 && s.warmup_start_factor <= 1))
      throw UsageError("lr schedule: warm-up start factor must be in (0, 1]");
    schedule = std::make_unique<WarmupLr>(std::move(schedule), s.warmup_start_factor,
                                          warmup_steps);
  }
  return schedule;
}

bool whole(double epochs) { return epochs == std::floor(epochs); }

// The spec of the same schedule with one step per epoch (step_unit "epoch").
LrScheduleSpec per_epoch_spec(const LrScheduleSpec& s) {
  if (!whole(s.warmup_epochs))
    throw UsageError("lr schedule: stepped per epoch, warm-up epochs must be whole");
  for (double m : s.milestones)
    if (!whole(m))
      throw UsageError("lr schedule 'step': stepped per epoch, milestones must be whole");
  LrScheduleSpec e = s;
  e.steps_per_epoch = 1;
  e.total_steps = 0;  // the epochs
  return e;
}

void check_common(const LrScheduleSpec& s) {
  if (!(s.base_lr > 0)) throw UsageError("lr schedule: base lr must be > 0");
  if (s.steps_per_epoch < 1) throw UsageError("lr schedule: steps per epoch must be >= 1");
  if (s.step_unit != "step" && s.step_unit != "epoch")
    throw UsageError("lr schedule: step unit must be 'step' or 'epoch', got '" + s.step_unit +
                     "'");
}

}  // namespace

std::unique_ptr<LrSchedule> make_lr_schedule(const LrScheduleSpec& s) {
  check_common(s);
  if (s.step_unit == "step") return make_per_step(s);
  return std::make_unique<PerEpoch>(make_per_step(per_epoch_spec(s)), s.steps_per_epoch);
}

std::unique_ptr<LrSchedule> make_momentum_schedule(const LrScheduleSpec& s) {
  check_common(s);
  if (s.name != "onecycle" || !s.cycle_momentum) return nullptr;
  if (!(s.base_momentum >= 0 && s.base_momentum < 1 && s.max_momentum >= 0 &&
        s.max_momentum < 1))
    throw UsageError("lr schedule 'onecycle': base and max momentum must be in [0, 1)");
  const LrScheduleSpec e = s.step_unit == "step" ? s : per_epoch_spec(s);
  auto m = std::make_unique<OneCycleMomentum>(make_onecycle(e), s.base_momentum, s.max_momentum);
  if (s.step_unit == "step") return m;
  return std::make_unique<PerEpoch>(std::move(m), s.steps_per_epoch);
}

}  // namespace dp::optim
