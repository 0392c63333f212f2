// LR schedules against torch.optim.lr_scheduler. The expected values were computed with
// Debian's PyTorch 1.13 by tests/nn/lr_reference.py (schedulers stepped once per iteration)
// and pasted here; steps_per_epoch = 10 in every case.
#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include "core/error.h"
#include "optim/lr_schedule.h"

using dp::optim::LrScheduleSpec;
using dp::optim::make_lr_schedule;

namespace {

void expect_matches(const LrScheduleSpec& spec, const std::map<int64_t, double>& expected) {
  auto schedule = make_lr_schedule(spec);
  for (const auto& [step, lr] : expected) {
    // 1e-9 relative: only float rounding separates closed forms from torch's recursions.
    EXPECT_NEAR(schedule->lr(step), lr, 1e-9 * std::abs(lr) + 1e-15)
        << spec.name << " at step " << step;
  }
}

LrScheduleSpec spec(const std::string& name, double base_lr, int64_t epochs) {
  LrScheduleSpec s;
  s.name = name;
  s.base_lr = base_lr;
  s.steps_per_epoch = 10;
  s.epochs = epochs;
  return s;
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
  s.anneal = "cos";
  expect_matches(s, {{0, 0.0040000000000000036}, {1, 0.004281378056590748},
                     {15, 0.05459866761210004}, {29, 0.1}, {30, 0.09994965352845243},
                     {50, 0.0793893450575732}, {99, 4e-07}});
}

TEST(LrSchedule, OneCycleLinearMatchesTorch) {
  LrScheduleSpec s = spec("onecycle", 0.2, 8);
  s.pct_start = 0.25;
  s.div_factor = 10;
  s.final_div_factor = 100;
  s.anneal = "linear";
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

TEST(LrSchedule, RejectsBadSpecs) {
  EXPECT_THROW(make_lr_schedule(spec("triangle", 0.1, 5)), dp::UsageError);
  LrScheduleSpec s = spec("step", 0.1, 5);
  s.milestones = {4, 2};
  EXPECT_THROW(make_lr_schedule(s), dp::UsageError);
  s = spec("onecycle", 0.1, 5);
  s.anneal = "cubic";
  EXPECT_THROW(make_lr_schedule(s), dp::UsageError);
  s = spec("cosine", 0.1, 5);
  s.min_lr = 0.2;
  EXPECT_THROW(make_lr_schedule(s), dp::UsageError);
  EXPECT_THROW(make_lr_schedule(spec("constant", 0.0, 5)), dp::UsageError);
}
