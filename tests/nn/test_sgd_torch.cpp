// The trainer's SGD over several steps against torch.optim.SGD: dampening (torch does not
// dampen the buffer's first update), a momentum that OneCycleLR changes every step (the
// buffer update uses the step's momentum), and Nesterov under it. The expected weights and
// buffers were computed with Debian's PyTorch 1.13 by tests/nn/sgd_reference.py and pasted
// here; the gradients are exact in float32 on both sides. Also: a resumed optimizer (updates
// restored) continues the uninterrupted run bit for bit.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "optim/lr_schedule.h"
#include "optim/optimizer.h"

namespace dp::optim {
namespace {

constexpr int64_t kN = 8;

// What sgd_reference.py's run() sets up: 8 weights and the step's gradient.
struct Fixture {
  std::unique_ptr<Backend> backend = make_cpu_backend(1);
  Tensor w = Tensor::empty({kN}), g = Tensor::empty({kN});
  Fixture() {
    for (int64_t i = 0; i < kN; ++i) w.data()[i] = (i - 4) * 0.25f;
  }
  void set_grad(int64_t step) {
    for (int64_t i = 0; i < kN; ++i) g.data()[i] = ((i * 7 + step * 3) % 11 - 5) * 0.125f;
  }
  Optimizer optimizer(ParamGroup group) {
    group.ranges = {{0, kN}};
    return Optimizer(*backend, w, g, Tensor(), {group}, 0.1);
  }
};

ParamGroup group(float momentum, float dampening, float weight_decay, bool nesterov) {
  ParamGroup g;
  g.momentum = momentum;
  g.dampening = dampening;
  g.weight_decay = weight_decay;
  g.nesterov = nesterov;
  return g;
}

// Steps `from` .. `to` - 1, with OneCycleLR's defaults (10 steps) setting lr and momentum
// before each when `onecycle`, as the trainer's step callbacks do.
void run_steps(Fixture& f, Optimizer& opt, int64_t from, int64_t to, bool onecycle) {
  LrScheduleSpec spec;
  spec.kind = dp::optim::LrScheduleKind::onecycle;
  spec.base_lr = 0.1;
  spec.steps_per_epoch = 10;
  auto lr = make_lr_schedule(spec);
  auto momentum = make_momentum_schedule(spec);
  for (int64_t k = from; k < to; ++k) {
    if (onecycle) {
      opt.set_lr(lr->lr(k));
      for (ParamGroup& g : opt.groups()) g.momentum = static_cast<float>(momentum->lr(k));
    }
    f.set_grad(k);
    opt.step();
  }
}

void expect_torch(const Tensor& t, const std::vector<double>& torch, const char* what) {
  // float32 arithmetic on both sides; ours may fuse multiply-adds: a few ulps of 1.
  for (int64_t i = 0; i < kN; ++i)
    EXPECT_NEAR(t.data()[i], torch[i], 2e-7) << what << " [" << i << "]";
}

TEST(SgdAgainstTorch, DampeningWithWeightDecay) {
  Fixture f;
  Optimizer opt = f.optimizer(group(0.9f, 0.3f, 0.01f, false));
  run_steps(f, opt, 0, 5, false);
  expect_torch(f.w, {-0.7294893264770508, -0.9496313333511353, -0.4422849118709564,
                     -0.41858893632888794, -0.07730665057897568, 0.43003976345062256,
                     0.35748574137687683, 0.7950180172920227}, "weights");
  expect_torch(opt.momentum_buffer(), {-0.528511643409729, 0.5074276328086853,
                                       -0.2338409572839737, 0.0070335641503334045,
                                       0.1486670821905136, -0.592601478099823,
                                       0.6107730269432068, -0.21009351313114166}, "buffer");
}

TEST(SgdAgainstTorch, DampeningUnderOneCycleDefaults) {
  Fixture f;
  Optimizer opt = f.optimizer(group(0.9f, 0.5f, 0.f, false));
  run_steps(f, opt, 0, 6, true);
  expect_torch(f.w, {-0.8301221132278442, -0.8611974120140076, -0.4680657684803009,
                     -0.3517707288265228, -0.058478087186813354, 0.37667787075042725,
                     0.3998110890388489, 0.78626549243927}, "weights");
  expect_torch(opt.momentum_buffer(), {-0.43622201681137085, 0.032021135091781616,
                                       -0.04975725710391998, -0.047513753175735474,
                                       0.4137195348739624, -0.3555588126182556,
                                       0.25778546929359436, 0.10791794955730438}, "buffer");
}

TEST(SgdAgainstTorch, NesterovUnderOneCycleDefaults) {
  Fixture f;
  Optimizer opt = f.optimizer(group(0.9f, 0.f, 5e-4f, true));
  run_steps(f, opt, 0, 6, true);
  expect_torch(f.w, {-0.8439393639564514, -0.8733221888542175, -0.5143142938613892,
                     -0.2336076945066452, -0.09785424172878265, 0.41991063952445984,
                     0.4256339371204376, 0.8363708257675171}, "weights");
  expect_torch(opt.momentum_buffer(), {-0.5588182210922241, -0.06405085325241089,
                                       0.025620654225349426, -0.4113129675388336,
                                       0.7642771005630493, -0.5210514664649963,
                                       0.26411232352256775, 0.21760502457618713}, "buffer");
}

// A checkpoint keeps weights, buffer and the update count; a fresh optimizer given all three
// continues bit for bit. Without the count it would apply the first-update rule again.
TEST(SgdResume, RestoredUpdateCountContinuesExactly) {
  Fixture whole;
  Optimizer uninterrupted = whole.optimizer(group(0.9f, 0.3f, 0.01f, false));
  run_steps(whole, uninterrupted, 0, 5, false);

  for (const bool restore_count : {true, false}) {
    Fixture first;
    Optimizer before = first.optimizer(group(0.9f, 0.3f, 0.01f, false));
    run_steps(first, before, 0, 2, false);
    Fixture second;
    std::copy_n(first.w.data(), kN, second.w.data());
    Optimizer after = second.optimizer(group(0.9f, 0.3f, 0.01f, false));
    std::copy_n(before.momentum_buffer().data(), kN, after.momentum_buffer().data());
    if (restore_count) after.set_updates(before.updates());
    run_steps(second, after, 2, 5, false);
    const bool same = std::equal(whole.w.data(), whole.w.data() + kN, second.w.data());
    EXPECT_EQ(same, restore_count) << "update count restored: " << restore_count;
  }
}

}  // namespace
}  // namespace dp::optim
