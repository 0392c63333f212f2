// LookaheadCallback against a naive reference over 23 steps with T = 23: between steps the
// parameters and BN running statistics are moved at random (standing in for training); the
// reference keeps its own average in double, ema = d ema + (1 - d) w and w = ema after every
// 5th step with d = 0.95^5 (t/T)^3, and once more with d = 1 after step T. num_batches_tracked
// is left alone.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "step_fixture.h"
#include "train/lookahead_callback.h"

namespace dp::test {
namespace {

TEST(Lookahead, MatchesANaiveAverageOfParametersAndBnStatistics) {
  auto backend = make_cpu_backend(1);
  auto model = nn::make_model(small_resnet(), *backend);
  const int64_t T = 23;
  LookaheadCallback lookahead(*model, LookaheadOptions{5, 0.95, 3.0, T});
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
  ASSERT_GE(tracked, 0);
  std::mt19937 gen(5);
  std::normal_distribution<float> normal;
  optim::ParamGroup all;
  all.ranges = {{0, model->params().numel()}};
  optim::Optimizer unused(*backend, model->params(), model->grads(), Tensor(), {all}, 0.1);
  int updates = 0;
  double worst = 0;
  for (int64_t step = 0; step < T; ++step) {
    for (float& p : params) p += 0.1f * normal(gen);
    for (size_t i = 0; i < buffers.size(); ++i) buffers[i] += averaged[i] ? 0.1f * normal(gen) : 1;
    backend->copy_from_host(params.data(), model->params());
    backend->copy_from_host(buffers.data(), model->buffers());
    lookahead.after_step(StepPosition{1, step, step}, unused, true);
    const int64_t t = step + 1;
    std::vector<double> decays;
    if (t % 5 == 0) decays.push_back(std::pow(0.95, 5) * std::pow(double(t) / T, 3));
    if (t == T) decays.push_back(1.0);
    for (double d : decays) {
      ++updates;
      for (size_t i = 0; i < params.size(); ++i)
        params[i] = ema_p[i] = d * ema_p[i] + (1 - d) * params[i];
      for (size_t i = 0; i < buffers.size(); ++i)
        if (averaged[i]) buffers[i] = ema_b[i] = d * ema_b[i] + (1 - d) * buffers[i];
    }
    const auto got_p = to_host(*backend, model->params());
    const auto got_b = to_host(*backend, model->buffers());
    for (size_t i = 0; i < params.size(); ++i)
      worst = std::max(worst, double(std::abs(got_p[i] - params[i])));
    for (size_t i = 0; i < buffers.size(); ++i)
      worst = std::max(worst, double(std::abs(got_b[i] - buffers[i])));
    EXPECT_EQ(got_b[tracked], float(step + 1)) << "num_batches_tracked is not averaged";
    params = got_p;  // continue from the callback's floats
    buffers = got_b;
  }
  EXPECT_EQ(updates, 5) << "after steps 5, 10, 15, 20 and the final one";
  EXPECT_LT(worst, 2e-5);
  std::cout << "lookahead: worst |callback - naive reference| = " << worst << "\n";
}

}  // namespace
}  // namespace dp::test
