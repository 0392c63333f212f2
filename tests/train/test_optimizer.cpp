// The trainer's Optimizer and its parameter groups on the CPU backend: one group is the
// backend's SGD step over the whole buffer bit for bit; several groups each follow their own
// hyper-parameters (checked against optim::Sgd run on each group's elements alone); a frozen
// group does not move; every parameter lands in exactly one group.
#include <gtest/gtest.h>

#include <random>

#include "core/error.h"
#include "optim/optimizer.h"
#include "optim/sgd.h"
#include "step_fixture.h"
#include "train/config.h"
#include "train/param_groups.h"
#include "train/schedule_callbacks.h"
#include "train/step_callback.h"

namespace dp::test {
namespace {

bool is_bn(const nn::StateEntry& e) {
  return e.param_role == nn::ParamRole::bn_weight || e.param_role == nn::ParamRole::bn_bias;
}

void fill_random(Backend& backend, Tensor& t, uint32_t seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> normal;
  std::vector<float> host(t.numel());
  for (float& x : host) x = normal(gen);
  backend.copy_from_host(host.data(), t);
}

ParamGroupRule rule(const std::string& name, double lr_factor, float momentum, float decay,
                    bool nesterov, std::function<bool(const nn::StateEntry&)> takes) {
  ParamGroupRule r;
  r.group.name = name;
  r.group.lr_factor = lr_factor;
  r.group.momentum = momentum;
  r.group.weight_decay = decay;
  r.group.nesterov = nesterov;
  r.takes = std::move(takes);
  return r;
}

TEST(ParamGroups, EveryParameterInExactlyOneGroupAndNeighboursMerge) {
  auto backend = make_cpu_backend(1);
  auto model = nn::make_model(small_resnet(), *backend);
  const auto groups = assign_param_groups(
      model->store(), {rule("bn", 1, 0.9f, 0, false, is_bn), rule("rest", 1, 0.9f, 0, false, {})});
  std::vector<int> owner(model->params().numel(), -1);
  for (size_t g = 0; g < groups.size(); ++g)
    for (const optim::ParamRange& r : groups[g].ranges)
      for (int64_t i = r.offset; i < r.offset + r.numel; ++i) {
        ASSERT_EQ(owner[i], -1) << "element " << i << " in two groups";
        owner[i] = static_cast<int>(g);
      }
  for (const nn::StateEntry& e : model->store().entries()) {
    if (e.kind != nn::StateKind::parameter) continue;
    for (int64_t i = e.offset; i < e.offset + e.numel(); ++i)
      ASSERT_EQ(owner[i], is_bn(e) ? 0 : 1) << e.name;
  }
  // A BN layer's weight and bias sit side by side: one range, not two.
  EXPECT_LT(groups[0].ranges.size(), model->store().parameter_tensor_count());
  const auto one = assign_param_groups(model->store(), {rule("all", 1, 0.9f, 0, false, {})});
  ASSERT_EQ(one[0].ranges.size(), 1u);
  EXPECT_EQ(one[0].ranges[0].numel, model->params().numel());
}

// airbench94's BN scales are fixed (not trainable): no group takes them, so no step moves
// them, even with weight decay; every trainable parameter still lands in the one group.
TEST(ParamGroups, FixedParametersBelongToNoGroupAndNeverMove) {
  auto backend = make_cpu_backend(1);
  nn::ModelSpec spec;
  spec.arch = "airbench94";
  auto model = nn::make_model(spec, *backend);
  const auto groups =
      assign_param_groups(model->store(), {rule("all", 1, 0.9f, 5e-4f, true, {})});
  std::vector<bool> owned(model->params().numel(), false);
  for (const optim::ParamRange& r : groups[0].ranges)
    for (int64_t i = r.offset; i < r.offset + r.numel; ++i) owned[i] = true;
  int fixed = 0;
  for (const nn::StateEntry& e : model->store().entries()) {
    if (e.kind != nn::StateKind::parameter) continue;
    fixed += !e.trainable;
    for (int64_t i = e.offset; i < e.offset + e.numel(); ++i) {
      ASSERT_EQ(owned[i], e.trainable) << e.name;
    }
  }
  EXPECT_EQ(fixed, 6);
  fill_random(*backend, model->grads(), 3);
  std::vector<float> before(model->params().numel()), after(before.size());
  backend->copy_to_host(model->params(), before.data());
  optim::Optimizer opt(*backend, model->params(), model->grads(), Tensor(), groups, 0.1);
  opt.step();
  opt.step();
  backend->copy_to_host(model->params(), after.data());
  for (const nn::StateEntry& e : model->store().entries()) {
    if (e.kind != nn::StateKind::parameter || e.trainable) continue;
    for (int64_t i = e.offset; i < e.offset + e.numel(); ++i) {
      ASSERT_EQ(after[i], before[i]) << e.name;
    }
  }
}

TEST(ParamGroups, AParameterNoRuleTakesIsRefusedByName) {
  auto backend = make_cpu_backend(1);
  auto model = nn::make_model(small_resnet(), *backend);
  try {
    assign_param_groups(model->store(), {rule("bn", 1, 0.9f, 0, false, is_bn)});
    FAIL() << "expected UsageError";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("conv1.weight"), std::string::npos) << e.what();
  }
}

// The reference is the backend primitive itself, called on the whole buffers with the
// first-update flag on step 1 only, as a single SGD over the model would.
TEST(Optimizer, OneGroupIsTheBackendsSgdStepBitForBit) {
  auto backend = make_cpu_backend(1);
  auto a = nn::make_model(small_resnet(), *backend), b = nn::make_model(small_resnet(), *backend);
  SgdHyper hyper;
  hyper.momentum = 0.9f;
  hyper.weight_decay = 5e-4f;
  hyper.nesterov = true;
  Tensor mask = a->store().make_decay_mask(true);
  Tensor momentum = backend->allocate({a->params().numel()});
  backend->fill(momentum, 0.0f);
  optim::Optimizer optimizer(*backend, b->params(), b->grads(), b->store().make_decay_mask(true),
                             assign_param_groups(b->store(), {rule("default", 1, 0.9f, 5e-4f, true, {})}),
                             0.1);
  for (uint32_t step = 0; step < 5; ++step) {
    fill_random(*backend, a->grads(), step);
    fill_random(*backend, b->grads(), step);
    const double lr = 0.1 / (step + 1);
    hyper.lr = static_cast<float>(lr);
    hyper.first_step = step == 0;
    backend->sgd_step(hyper, a->params(), a->grads(), momentum, mask);
    optimizer.set_lr(lr);
    optimizer.step();
    ASSERT_EQ(to_host(*backend, a->params()), to_host(*backend, b->params())) << "step " << step;
  }
  EXPECT_EQ(to_host(*backend, momentum), to_host(*backend, optimizer.momentum_buffer()));
  EXPECT_EQ(optimizer.updates(), 5);
}

// optim::Sgd on a copy of one group's elements, as the reference for that group.
std::vector<float> reference_group(Backend& backend, const std::vector<float>& p0,
                                   const std::vector<std::vector<float>>& grads,
                                   const optim::ParamGroup& g, double lr) {
  std::vector<float> out = p0;
  for (const optim::ParamRange& r : g.ranges) {
    Tensor p = Tensor::empty({r.numel}), grad = Tensor::empty({r.numel});
    std::copy_n(p0.begin() + r.offset, r.numel, p.data());
    SgdHyper h;
    h.momentum = g.momentum;
    h.weight_decay = g.weight_decay;
    h.nesterov = g.nesterov;
    optim::Sgd sgd(backend, p, grad, Tensor(), h);
    for (const auto& step_grads : grads) {
      std::copy_n(step_grads.begin() + r.offset, r.numel, grad.data());
      sgd.step(static_cast<float>(lr * g.lr_factor));
    }
    std::copy_n(p.data(), r.numel, out.begin() + r.offset);
  }
  return out;
}

TEST(Optimizer, EachGroupFollowsItsOwnHyperParametersAndAFrozenOneStays) {
  auto backend = make_cpu_backend(1);
  auto model = nn::make_model(small_resnet(), *backend);
  auto groups = assign_param_groups(
      model->store(), {rule("bn", 64, 0.5f, 1e-2f, true, is_bn),
                       rule("linear", 1, 0.9f, 0, false,
                            [](const nn::StateEntry& e) { return e.name.rfind("fc.", 0) == 0; }),
                       rule("default", 1, 0.9f, 5e-4f, false, {})});
  groups[1].frozen = true;
  const std::vector<float> p0 = to_host(*backend, model->params());
  optim::Optimizer optimizer(*backend, model->params(), model->grads(), Tensor(), groups, 0.01);
  std::vector<std::vector<float>> grads;
  for (uint32_t step = 0; step < 4; ++step) {
    fill_random(*backend, model->grads(), 100 + step);
    grads.push_back(to_host(*backend, model->grads()));
    optimizer.step();
  }
  const std::vector<float> got = to_host(*backend, model->params());
  for (size_t g : {0u, 2u}) {
    const std::vector<float> want = reference_group(*backend, p0, grads, groups[g], 0.01);
    for (const optim::ParamRange& r : groups[g].ranges)
      for (int64_t i = r.offset; i < r.offset + r.numel; ++i)
        ASSERT_NEAR(got[i], want[i], 1e-6f * (1 + std::abs(want[i]))) << groups[g].name << " " << i;
  }
  for (const optim::ParamRange& r : groups[1].ranges)
    for (int64_t i = r.offset; i < r.offset + r.numel; ++i) ASSERT_EQ(got[i], p0[i]) << "frozen";
  EXPECT_THROW(optimizer.group("nope"), UsageError);
  EXPECT_TRUE(optimizer.group("linear").frozen);
}

TEST(Optimizer, OverlappingGroupsAndBadHyperParametersAreRefused) {
  auto backend = make_cpu_backend(1);
  Tensor p = Tensor::zeros({10}), g = Tensor::zeros({10});
  optim::ParamGroup a, b;
  a.ranges = {{0, 6}};
  b.ranges = {{5, 5}};
  EXPECT_THROW(optim::Optimizer(*backend, p, g, Tensor(), {a, b}, 0.1), Error);
  b.ranges = {{6, 4}};
  b.momentum = 0;
  b.nesterov = true;
  EXPECT_THROW(optim::Optimizer(*backend, p, g, Tensor(), {a, b}, 0.1), UsageError);
}

class Recorder : public StepCallback {
 public:
  Recorder(std::vector<std::string>& log, std::string name) : log_(log), name_(std::move(name)) {}
  void before_step(const StepPosition& at, optim::Optimizer&) override {
    log_.push_back(name_ + " before " + std::to_string(at.global_step));
  }
  void after_step(const StepPosition& at, optim::Optimizer&, bool updated) override {
    log_.push_back(name_ + " after " + std::to_string(at.global_step) + (updated ? "" : " skipped"));
  }

 private:
  std::vector<std::string>& log_;
  std::string name_;
};

TEST(StepCallbacks, CalledInTheOrderAdded) {
  auto backend = make_cpu_backend(1);
  Tensor p = Tensor::zeros({4}), g = Tensor::zeros({4});
  optim::ParamGroup all;
  all.ranges = {{0, 4}};
  optim::Optimizer optimizer(*backend, p, g, Tensor(), {all}, 0.1);
  std::vector<std::string> log;
  StepCallbacks callbacks;
  callbacks.add(std::make_unique<Recorder>(log, "a"));
  callbacks.add(std::make_unique<Recorder>(log, "b"));
  callbacks.before_step({1, 0, 7}, optimizer);
  callbacks.after_step({1, 0, 7}, optimizer, false);
  EXPECT_EQ(log, (std::vector<std::string>{"a before 7", "b before 7", "a after 7 skipped",
                                           "b after 7 skipped"}));
}

// The run's schedule callbacks from the options: onecycle with the defaults sets every group's
// momentum to OneCycleLR's (0.95 at the start, 0.85 at the LR's peak: step 29 of 100 at
// pct_start 0.3), replacing --momentum; without cycling the groups keep theirs.
TEST(StepCallbacks, OneCycleDefaultsCycleEveryGroupsMomentum) {
  auto backend = make_cpu_backend(1);
  Tensor p = Tensor::zeros({4}), g = Tensor::zeros({4});
  optim::ParamGroup first, second;
  first.ranges = {{0, 2}};
  second.name = "second";
  second.ranges = {{2, 2}};
  second.momentum = 0.5f;
  optim::Optimizer optimizer(*backend, p, g, Tensor(), {first, second}, 0.1);
  for (const bool cycle : {true, false}) {
    TrainConfig config;
    config.lr_schedule = optim::LrScheduleKind::onecycle;
    config.epochs = 10;
    config.onecycle_cycle_momentum = cycle;
    StepCallbacks callbacks = schedule_callbacks(config, 10);
    for (const auto& [step, expected] : {std::pair{0, 0.95f}, std::pair{29, 0.85f}}) {
      callbacks.before_step({1, 0, step}, optimizer);
      EXPECT_FLOAT_EQ(optimizer.lr(), step == 0 ? 0.004 : 0.1) << "step " << step;
      EXPECT_FLOAT_EQ(optimizer.group("default").momentum, cycle ? expected : 0.9f);
      EXPECT_FLOAT_EQ(optimizer.group("second").momentum, cycle ? expected : 0.5f);
    }
    if (cycle) {  // restore the groups' own values for the no-cycle pass
      optimizer.group("default").momentum = 0.9f;
      optimizer.group("second").momentum = 0.5f;
    }
  }
}

// `--lr-schedule step` without --lr-milestones decays at 50% and 75% of any run, short ones
// included (fractional epochs; whole ones, rounded, when stepped per epoch), never silently
// constant where a milestone fits.
TEST(StepSchedule, DefaultMilestonesForShortRuns) {
  const auto milestones = [](const std::string& epochs, const std::string& unit) {
    TrainConfig c;
    parse_train_config({"--data", "x.h5", "--epochs", epochs, "--lr-step-unit", unit},
                       c);
    return c.lr_milestones;
  };
  EXPECT_EQ(milestones("1", "step"), (std::vector<double>{0.5, 0.75}));
  EXPECT_EQ(milestones("2", "step"), (std::vector<double>{1, 1.5}));
  EXPECT_EQ(milestones("3", "step"), (std::vector<double>{1.5, 2.25}));
  EXPECT_EQ(milestones("10", "step"), (std::vector<double>{5, 7.5}));
  EXPECT_EQ(milestones("2.5", "step"), (std::vector<double>{1.25, 1.875}));  // of the run's 2.5
  EXPECT_EQ(milestones("2", "epoch"), (std::vector<double>{1}));
  EXPECT_EQ(milestones("3", "epoch"), (std::vector<double>{2}));
  EXPECT_EQ(milestones("10", "epoch"), (std::vector<double>{5, 8}));
  // Stepped per epoch, of the ceil(E) epochs the schedule spans: 5 and 7.5 of 10, not of 9.5.
  EXPECT_EQ(milestones("9.5", "epoch"), (std::vector<double>{5, 8}));
}

// Milestones at or past the run's end are kept and never reached, as with torch's MultiStepLR;
// the schedule's log line names them.
TEST(StepSchedule, MilestonesPastTheEndAreLoggedAndNeverReached) {
  TrainConfig c;
  // 1.96 epochs of 10 steps: step 19.6, which the schedule rounds to 20, the run's end.
  parse_train_config({"--data", "x.h5", "--epochs", "2", "--lr-milestones", "1,1.96,5"},
                     c);
  testing::internal::CaptureStdout();
  StepCallbacks callbacks = schedule_callbacks(c, 10);
  const std::string log = testing::internal::GetCapturedStdout();
  EXPECT_NE(
      log.find("at epochs 1, 1.96, 5, of which 1.96, 5 at or past the run's end: never reached"),
      std::string::npos)
      << log;
  auto backend = make_cpu_backend(1);
  Tensor p = Tensor::zeros({2}), g = Tensor::zeros({2});
  optim::Optimizer optimizer(*backend, p, g, Tensor(), {optim::ParamGroup{}}, 0.1);
  for (const auto& [step, lr] : {std::pair{9, 0.1f}, std::pair{10, 0.01f}, std::pair{19, 0.01f}}) {
    callbacks.before_step({step / 10 + 1, step % 10, step}, optimizer);
    EXPECT_FLOAT_EQ(optimizer.lr(), lr) << "step " << step;
  }
}

// A fractional warm-up rounds as the milestones do (0.7 epochs of 5 steps: 3.5, half away from
// zero: 4 steps; a float option made it 3.4999998, 3 steps), and one that rounds to no step
// is refused, not dropped while the log names it.
TEST(WarmupSchedule, RoundsAsMilestonesAndRefusesNoStep) {
  TrainConfig c;
  parse_train_config({"--data", "x.h5", "--epochs", "2", "--lr-schedule", "constant",
                      "--warmup-epochs", "0.7"},
                     c);
  StepCallbacks callbacks = schedule_callbacks(c, 5);
  auto backend = make_cpu_backend(1);
  Tensor p = Tensor::zeros({2}), g = Tensor::zeros({2});
  optim::Optimizer optimizer(*backend, p, g, Tensor(), {optim::ParamGroup{}}, 0.1);
  // LinearLR(start_factor=0.1, total_iters=4): 0.1 + 0.9 * t / 4 of the rate, then 1.
  for (const auto& [step, factor] : {std::pair{0, 0.1}, std::pair{3, 0.775}, std::pair{4, 1.0}}) {
    callbacks.before_step({1, step, step}, optimizer);
    EXPECT_NEAR(optimizer.lr(), 0.1 * factor, 1e-7) << "step " << step;
  }
  parse_train_config({"--data", "x.h5", "--epochs", "2", "--lr-schedule", "constant",
                      "--warmup-epochs", "0.1"},
                     c);
  try {
    schedule_callbacks(c, 4);
    ADD_FAILURE() << "a warm-up of no step was accepted";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("--warmup-epochs: 0.1 epochs of 4 steps"),
              std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace dp::test
