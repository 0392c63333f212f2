// LookaheadCallback against a naive reference over 23 steps with T = 23: between steps the
// parameters and BN running statistics are moved at random (standing in for training); the
// reference keeps its own average in double, ema = d ema + (1 - d) w and w = ema after every
// 5th step with d = 0.95^5 (t/T)^3, and once more with d = 1 after step T. num_batches_tracked
// is left alone. As airbench95 runs it too (6 steps per epoch, start epoch 2, each epoch): the
// average taken from the weights after step 15 (the first multiple of 5 in epoch 3), nothing
// moved before, then the updates after step 20 and, with d = 1, after steps 18 (the end of
// epoch 3) and 23 (T).
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "step_fixture.h"
#include "support/max_difference.h"
#include "train/lookahead_callback.h"

namespace dp::test {
namespace {

// Runs T steps of random moves through a LookaheadCallback with `options` and the naive
// reference; returns the number of averaging updates the reference made (the start included).
int run_against_reference(const LookaheadOptions& options) {
  auto backend = make_cpu_backend(1);
  auto model = nn::make_model(small_resnet(), *backend);
  const int64_t T = options.total_steps, per_epoch = options.steps_per_epoch;
  LookaheadCallback lookahead(*model, options);
  std::vector<float> params = to_host(*backend, model->params());
  std::vector<float> buffers = to_host(*backend, model->buffers());
  std::vector<double> ema_p(params.begin(), params.end()), ema_b(buffers.begin(), buffers.end());
  std::vector<bool> averaged(buffers.size(), false);
  int64_t tracked = -1;
  for (const nn::StateEntry& e : model->store().entries())
    if (e.kind == nn::StateKind::buffer) {
      const bool counter = e.buffer_role == nn::BufferRole::num_batches_tracked;
      for (int64_t i = 0; i < e.numel(); ++i) averaged[e.offset + i] = !counter;
      if (counter) tracked = e.offset;
    }
  if (tracked < 0) {
    ADD_FAILURE() << "the model has no num_batches_tracked buffer";
    return -1;
  }
  std::mt19937 gen(5);
  std::normal_distribution<float> normal;
  optim::ParamGroup all;
  all.ranges = {{0, model->params().numel()}};
  optim::Optimizer unused(*backend, model->params(), model->grads(), Tensor(), {all}, 0.1);
  int updates = 0;
  bool started = options.start_epoch == 0;
  double worst = 0;
  for (int64_t step = 0; step < T; ++step) {
    for (float& p : params) p += 0.1f * normal(gen);
    for (size_t i = 0; i < buffers.size(); ++i) buffers[i] += averaged[i] ? 0.1f * normal(gen) : 1;
    backend->copy_from_host(params.data(), model->params());
    backend->copy_from_host(buffers.data(), model->buffers());
    const int64_t epoch = step / per_epoch + 1, in_epoch = step % per_epoch;
    lookahead.after_step(StepPosition{epoch, in_epoch, step}, unused, true);
    const int64_t t = step + 1;
    std::vector<double> decays;
    if (!started && epoch > options.start_epoch && t % 5 == 0) {
      started = true;  // the average starts as the weights: no update
      ++updates;
      ema_p.assign(params.begin(), params.end());
      for (size_t i = 0; i < buffers.size(); ++i)
        if (averaged[i]) ema_b[i] = buffers[i];
    } else if (started && t % 5 == 0) {
      decays.push_back(std::pow(0.95, 5) * std::pow(double(t) / T, 3));
    }
    if (started && (t == T || (options.each_epoch && in_epoch + 1 == per_epoch)))
      decays.push_back(1.0);
    for (double d : decays) {
      ++updates;
      for (size_t i = 0; i < params.size(); ++i)
        params[i] = ema_p[i] = d * ema_p[i] + (1 - d) * params[i];
      for (size_t i = 0; i < buffers.size(); ++i)
        if (averaged[i]) buffers[i] = ema_b[i] = d * ema_b[i] + (1 - d) * buffers[i];
    }
    const auto got_p = to_host(*backend, model->params());
    const auto got_b = to_host(*backend, model->buffers());
    worst =
        std::max({worst, max_abs_difference(got_p, params), max_abs_difference(got_b, buffers)});
    EXPECT_EQ(got_b[tracked], float(step + 1)) << "num_batches_tracked is not averaged";
    params = got_p;  // continue from the callback's floats
    buffers = got_b;
  }
  EXPECT_LT(worst, 2e-5);
  std::cout << "lookahead: worst |callback - naive reference| = " << worst << "\n";
  return updates;
}

TEST(Lookahead, MatchesANaiveAverageOfParametersAndBnStatistics) {
  EXPECT_EQ(run_against_reference(LookaheadOptions{{5, 0.95, 3.0}, 23}), 5)
      << "after steps 5, 10, 15, 20 and the final one";
}

TEST(Lookahead, StartsLateAndSyncsEachEpochAsAirbench95) {
  LookaheadOptions options{{5, 0.95, 3.0}, 23};
  options.steps_per_epoch = 6;
  options.start_epoch = 2;
  options.each_epoch = true;
  EXPECT_EQ(run_against_reference(options), 4)
      << "the start after step 15, updates after 18 (epoch end), 20 and 23 (T, d = 1)";
}

}  // namespace
}  // namespace dp::test
