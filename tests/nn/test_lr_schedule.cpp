// LR (and one-cycle momentum) schedules against torch.optim.lr_scheduler. The expected values
// were computed with Debian's PyTorch 1.13 by tests/nn/lr_reference.py (schedulers stepped
// once per iteration, or once per epoch for the Epoch* tests) and pasted here;
// steps_per_epoch = 10 in every case.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <map>

#include "core/error.h"
#include "optim/lr_schedule.h"

using dp::optim::LrScheduleKind;
using dp::optim::LrScheduleSpec;
using dp::optim::make_lr_schedule;

namespace {

void expect_values(const dp::optim::LrSchedule& schedule, const std::string& name,
                   const std::map<int64_t, double>& expected) {
  for (const auto& [step, value] : expected) {
    // 1e-9 relative: only float rounding separates closed forms from torch's recursions.
    EXPECT_NEAR(schedule.lr(step), value, 1e-9 * std::abs(value) + 1e-15)
        << name << " at step " << step;
  }
}

void expect_matches(const LrScheduleSpec& spec, const std::map<int64_t, double>& expected) {
  expect_values(*make_lr_schedule(spec), std::string(dp::enum_name(spec.kind)), expected);
}

LrScheduleSpec spec(const std::string& name, double base_lr, int64_t epochs) {
  LrScheduleSpec s;
  s.kind = dp::parse_enum_option<LrScheduleKind>("lr-schedule", name);
  s.base_lr = base_lr;
  s.steps_per_epoch = 10;
  s.epochs = epochs;
  return s;
}

// make_lr_schedule(spec) refuses `parameter` with a reason that contains `expected`.
void expect_refused(const LrScheduleSpec& spec, const std::string& parameter,
                    const std::string& expected = "") {
  try {
    make_lr_schedule(spec);
    ADD_FAILURE() << "no error; expected one for " << parameter << ": " << expected;
  } catch (const dp::optim::LrScheduleError& e) {
    EXPECT_EQ(e.parameter, parameter) << e.what();
    EXPECT_NE(e.reason.find(expected), std::string::npos) << e.what();
  }
}

}  // namespace

TEST(LrSchedule, Constant) {
  auto s = make_lr_schedule(spec("constant", 0.05, 3));
  EXPECT_DOUBLE_EQ(s->lr(0), 0.05);
  EXPECT_DOUBLE_EQ(s->lr(12345), 0.05);
}

TEST(LrSchedule, MultiStepMatchesTorch) {
  // The brief's baseline: 0.1 -> 0.01 -> 0.001 (milestones at epochs 3 and 6 here).
  LrScheduleSpec s = spec("step", 0.1, 9);
  s.milestones = {3, 6};
  s.gamma = 0.1;
  expect_matches(s, {{0, 0.1}, {29, 0.1}, {30, 0.010000000000000002}, {59, 0.010000000000000002},
                     {60, 0.0010000000000000002}, {89, 0.0010000000000000002}});
}

TEST(LrSchedule, CosineMatchesTorch) {
  LrScheduleSpec s = spec("cosine", 0.1, 5);
  s.min_lr = 0.001;
  expect_matches(s, {{0, 0.1}, {1, 0.09990232305719944}, {10, 0.09054634122155988},
                     {25, 0.0505}, {37, 0.016614918256529908}, {49, 0.0010976769428005578},
                     {50, 0.001}});
  EXPECT_NEAR(make_lr_schedule(s)->lr(500), 0.001, 1e-12);  // stays at min after the end
}

TEST(LrSchedule, OneCycleCosMatchesTorch) {
  LrScheduleSpec s = spec("onecycle", 0.1, 10);
  s.pct_start = 0.3;
  s.div_factor = 25;
  s.final_div_factor = 1e4;
  s.anneal = dp::optim::Anneal::cos;
  expect_matches(s, {{0, 0.0040000000000000036}, {1, 0.004281378056590748},
                     {15, 0.05459866761210004}, {29, 0.1}, {30, 0.09994965352845243},
                     {50, 0.0793893450575732}, {99, 4e-07}});
}

TEST(LrSchedule, OneCycleLinearMatchesTorch) {
  LrScheduleSpec s = spec("onecycle", 0.2, 8);
  s.pct_start = 0.25;
  s.div_factor = 10;
  s.final_div_factor = 100;
  s.anneal = dp::optim::Anneal::linear;
  expect_matches(s, {{0, 0.02}, {7, 0.08631578947368422}, {19, 0.2}, {20, 0.19667},
                     {40, 0.13007000000000002}, {79, 0.00020000000000000573}});
}

TEST(LrSchedule, WarmupThenStepMatchesChainedScheduler) {
  LrScheduleSpec s = spec("step", 0.1, 9);
  s.milestones = {3, 6};
  s.warmup_epochs = 2;
  s.warmup_start_factor = 0.1;
  expect_matches(s, {{0, 0.010000000000000002}, {5, 0.03250000000000001},
                     {19, 0.09550000000000004}, {20, 0.10000000000000005},
                     {30, 0.010000000000000005}, {61, 0.0010000000000000007}});
}

TEST(LrSchedule, WarmupTimesCosineMatchesTorch) {
  LrScheduleSpec s = spec("cosine", 0.1, 5);
  s.warmup_epochs = 1.5;
  s.warmup_start_factor = 0.25;
  expect_matches(s, {{0, 0.025000000000000005}, {3, 0.039645745014573776},
                     {14, 0.07777763951306274}, {15, 0.07938926261462365},
                     {30, 0.03454915028125264}, {49, 9.866357858642205e-05}});
}

// A run of 95 steps in 10 epochs of 10 (a fractional --epochs 9.5): cosine and onecycle end at
// its last step, as CosineAnnealingLR(T_max=95, eta_min=0.001) and OneCycleLR(total_steps=95)
// and the momentum OneCycleLR sets (tests/nn/lr_reference.py, cases "*_run_steps*").
TEST(LrSchedule, CosineAndOneCycleSpanTheRunsSteps) {
  LrScheduleSpec s = spec("cosine", 0.1, 10);
  s.total_steps = 95;
  s.min_lr = 0.001;
  expect_matches(s, {{0, 0.1},
                     {19, 0.09054634122155988},
                     {60, 0.030616076479678025},
                     {94, 0.0010270637616241606},
                     {95, 0.001}});
  s = spec("onecycle", 0.1, 10);
  s.total_steps = 95;
  expect_matches(s, {{0, 0.0040000000000000036},
                     {27, 0.09992171698845452},
                     {28, 0.09998605191639393},
                     {60, 0.05177139707328607},
                     {94, 4e-07}});
  expect_values(*dp::optim::make_momentum_schedule(s), "onecycle momentum",
                {{0, 0.95},
                 {27, 0.8500815448036932},
                 {28, 0.8500139481393986},
                 {60, 0.8982287958418973},
                 {94, 0.95}});
}

// torch's OneCycleLR with no argument but max_lr and total_steps: LrScheduleSpec's defaults
// are torch's (pct_start 0.3, cos, div factors 25 and 1e4, momentum cycled 0.95 -> 0.85 -> 0.95).
TEST(LrSchedule, OneCycleDefaultsMatchTorchDefaults) {
  const LrScheduleSpec s = spec("onecycle", 0.1, 10);
  expect_matches(s, {{0, 0.0040000000000000036}, {1, 0.004281378056590748},
                     {15, 0.05459866761210004}, {29, 0.1}, {30, 0.09994965352845243},
                     {50, 0.0793893450575732}, {99, 4e-07}});
  auto momentum = dp::optim::make_momentum_schedule(s);
  ASSERT_NE(momentum, nullptr) << "torch cycles momentum by default";
  expect_values(*momentum, "onecycle momentum",
                {{0, 0.95}, {1, 0.9497068978577179}, {15, 0.897293054570729}, {29, 0.85},
                 {30, 0.8500503466729342}, {50, 0.8706107373853763}, {99, 0.95}});
}

TEST(LrSchedule, OnlyOneCycleWithCycleMomentumSetsMomentum) {
  LrScheduleSpec s = spec("onecycle", 0.1, 10);
  s.cycle_momentum = false;
  EXPECT_EQ(dp::optim::make_momentum_schedule(s), nullptr);
  EXPECT_EQ(dp::optim::make_momentum_schedule(spec("cosine", 0.1, 10)), nullptr);
  s = spec("onecycle", 0.1, 10);
  s.max_momentum = 1.0;
  EXPECT_THROW(dp::optim::make_momentum_schedule(s), dp::UsageError);
}

// step_unit "epoch": torch's scheduler.step() once per epoch; every step of an epoch has the
// epoch's value (the first and last step of each epoch are checked).
TEST(LrSchedule, EpochCosineMatchesTorchSteppedPerEpoch) {
  LrScheduleSpec s = spec("cosine", 0.1, 5);
  s.min_lr = 0.001;
  s.step_unit = dp::optim::StepUnit::epoch;
  expect_matches(s, {{0, 0.1}, {9, 0.1}, {10, 0.0905463412215599}, {19, 0.0905463412215599},
                     {20, 0.06579634122155989}, {29, 0.06579634122155989},
                     {30, 0.035203658778440096}, {39, 0.035203658778440096},
                     {40, 0.010453658778440105}, {49, 0.010453658778440105}});
}

TEST(LrSchedule, EpochWarmupThenStepMatchesTorchSteppedPerEpoch) {
  LrScheduleSpec s = spec("step", 0.1, 9);
  s.milestones = {3, 6};
  s.warmup_epochs = 2;
  s.warmup_start_factor = 0.1;
  s.step_unit = dp::optim::StepUnit::epoch;
  const double a = 0.010000000000000002, b = 0.0010000000000000002;
  expect_matches(s, {{0, a}, {9, a}, {10, 0.05500000000000001}, {19, 0.05500000000000001},
                     {20, 0.1}, {29, 0.1}, {30, a}, {59, a}, {60, b}, {89, b}});
}

TEST(LrSchedule, EpochOneCycleDefaultsMatchTorchSteppedPerEpoch) {
  LrScheduleSpec s = spec("onecycle", 0.1, 10);
  s.step_unit = dp::optim::StepUnit::epoch;
  expect_matches(s, {{0, 0.0040000000000000036}, {9, 0.0040000000000000036},
                     {10, 0.052000000000000005}, {19, 0.052000000000000005}, {20, 0.1},
                     {29, 0.1}, {30, 0.09504846320134738}, {49, 0.0811745653949763},
                     {50, 0.06112620219362893}, {80, 0.004951936798652629}, {90, 4e-07},
                     {99, 4e-07}});
}

TEST(LrSchedule, EpochUnitRefusesFractionalEpochs) {
  LrScheduleSpec s = spec("cosine", 0.1, 5);
  s.step_unit = dp::optim::StepUnit::epoch;
  s.warmup_epochs = 1.5;
  expect_refused(s, "warmup_epochs", "whole");
  s = spec("step", 0.1, 5);
  s.step_unit = dp::optim::StepUnit::epoch;
  s.milestones = {2.5};
  expect_refused(s, "milestones", "whole");
}

// The names the options take are the enums' tables; any other is refused naming the option.
TEST(LrSchedule, NamesAreTheEnumsTables) {
  EXPECT_EQ(dp::enum_choices<LrScheduleKind>(),
            "constant, step, cosine, piecewise, onecycle or linear-warmup-decay");
  EXPECT_EQ(dp::parse_enum_option<LrScheduleKind>("lr-schedule", "linear-warmup-decay"),
            LrScheduleKind::linear_warmup_decay);
  EXPECT_EQ(dp::enum_name(dp::optim::StepUnit::epoch), "epoch");
  using dp::parse_enum_option;
  const std::pair<std::function<void()>, std::string> refused[] = {
      {[] { parse_enum_option<LrScheduleKind>("lr-schedule", "triangle"); },
       "option --lr-schedule: 'triangle' must be constant, step, cosine, piecewise, onecycle or "
       "linear-warmup-decay"},
      {[] { parse_enum_option<dp::optim::StepUnit>("lr-step-unit", "iteration"); },
       "option --lr-step-unit: 'iteration' must be step or epoch"},
      {[] { parse_enum_option<dp::optim::Anneal>("onecycle-anneal", "cubic"); },
       "option --onecycle-anneal: 'cubic' must be cos or linear"}};
  for (const auto& [parse, message] : refused) {
    try {
      parse();
      ADD_FAILURE() << message << ": accepted";
    } catch (const dp::UsageError& e) {
      EXPECT_EQ(e.what(), message);
    }
  }
}

// Each refusal names the field at fault; the reason names other fields in braces, which
// reason_naming lets a caller name as its users know them.
TEST(LrSchedule, RefusesBadSpecsNamingTheField) {
  LrScheduleSpec s = spec("step", 0.1, 5);
  s.milestones = {4, 2};
  expect_refused(s, "milestones", "in order");
  s.milestones = {0};
  expect_refused(s, "milestones", "(0, ");
  s = spec("cosine", 0.1, 5);
  s.min_lr = 0.2;
  expect_refused(s, "min_lr", "[0, {base_lr}]");
  try {
    make_lr_schedule(s);
    ADD_FAILURE() << "min_lr above base_lr accepted";
  } catch (const dp::optim::LrScheduleError& e) {
    EXPECT_STREQ(e.what(), "lr schedule: min_lr must be in [0, base_lr]");
    EXPECT_EQ(e.reason_naming([](const std::string& f) { return "<" + f + ">"; }),
              "must be in [0, <base_lr>]");
  }
  expect_refused(spec("constant", -0.1, 5), "base_lr", "not negative");
  expect_refused(spec("constant", std::numeric_limits<double>::quiet_NaN(), 5), "base_lr",
                 "finite");
  s = spec("piecewise", 0.1, 5);
  s.points = {{0.0, 1.0}, {1.0, std::numeric_limits<double>::infinity()}};
  expect_refused(s, "points", "finite");
  s.points = {};
  expect_refused(s, "points", "at least one point");
  s = spec("linear-warmup-decay", 0.1, 5);
  s.warmup_fraction = 1.0;
  expect_refused(s, "warmup_fraction", "(0, 1)");
}

// torch's LambdaLR does not chain with LinearLR (its value replaces the product), so the
// piecewise schedules take no --warmup-epochs; every other schedule does.
TEST(LrSchedule, WarmupOnlyWhereTorchChainsIt) {
  for (const auto& [kind, name] : enum_names(LrScheduleKind{})) {
    LrScheduleSpec s = spec(std::string(name), 0.1, 5);
    s.points = {{0.0, 1.0}, {1.0, 0.1}};
    s.warmup_epochs = 1;
    if (kind == LrScheduleKind::piecewise || kind == LrScheduleKind::linear_warmup_decay)
      expect_refused(s, "warmup_epochs", "its own points");
    else
      EXPECT_NO_THROW(make_lr_schedule(s)) << name;
  }
}

// The airbench94 schedule: LambdaLR over np.interp(step, [0, int(0.23 T), T], [0.2, 1, 0.07])
// with T = ceil(48 * 9.9) = 476 (tests/nn/lr_reference.py, case "piecewise"), and the formula.
TEST(LrSchedule, PiecewiseMatchesTorchLambdaLrOverNpInterp) {
  LrScheduleSpec s;
  s.kind = LrScheduleKind::piecewise;
  s.base_lr = 1.4648e-3;
  s.steps_per_epoch = 48;
  s.epochs = 10;
  s.total_steps = 476;
  s.points = {{0.0, 0.2}, {0.23, 1.0}, {1.0, 0.07}};
  const auto schedule = make_lr_schedule(s);
  expect_values(*schedule, "piecewise",
                {{0, 0.00029296000000000004}, {1, 0.0003037108256880734},
                 {50, 0.0008305012844036698}, {108, 0.0014540491743119267}, {109, 0.0014648},
                 {110, 0.0014610881089918257}, {300, 0.0007558288174386921},
                 {474, 0.0001099597820163489}, {475, 0.00010624789100817458}});
  for (int64_t step = 0; step <= 476; ++step) {
    const double f = step <= 109 ? 0.2 + 0.8 * double(step) / 109.0
                                 : 1.0 - 0.93 * double(step - 109) / double(476 - 109);
    EXPECT_NEAR(schedule->lr(step), s.base_lr * f, 1e-15) << step;
  }
  EXPECT_DOUBLE_EQ(schedule->lr(1000), s.base_lr * 0.07) << "flat after the last point";
  s.points = {{0.5, 1.0}, {0.5001, 0.5}};  // both knots at step 238
  expect_refused(s, "points",
                 "fractions 0.5 and 0.5001 of this run's 476 steps "
                 "fall on steps 238 and 238 (int(fraction x 476))");
  s.kind = LrScheduleKind::linear_warmup_decay;  // stepped per epoch, the knots are epochs
  s.step_unit = dp::optim::StepUnit::epoch;
  s.start_factor = 0.2;
  s.warmup_fraction = 0.05;
  s.end_factor = 0.07;
  expect_refused(s, "warmup_fraction",
                 "fractions 0 and 0.05 of this run's 10 epochs "
                 "fall on epochs 0 and 0 (int(fraction x 10))");
}
