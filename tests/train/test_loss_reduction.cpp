// --loss-reduction sum: the logits' gradient is that of the loss summed over the global batch
// (torch's CrossEntropyLoss(reduction='sum', label_smoothing=eps)), checked against the
// formula softmax(z) - q per sample in double precision; and W ranks, each scaling by
// n_local * W before the reducer's average over ranks, give the sum of every rank's summed
// gradients, which is what one rank summing the whole batch gets.
#include <gtest/gtest.h>

#include <cmath>

#include "step_fixture.h"
#include "support/max_difference.h"

namespace dp::test {
namespace {

// d/dz of sum_i CE_eps(z_i, y_i), times `factor`, in double: softmax(z_i) - q_i with
// q_i = (1 - eps) onehot(y_i) + eps / K (torch's label smoothing).
std::vector<double> summed_gradient(const std::vector<float>& z, const Tensor& labels, int64_t k,
                                    double eps, double factor) {
  const int64_t n = labels.numel();
  std::vector<double> d(n * k);
  for (int64_t i = 0; i < n; ++i) {
    double top = z[i * k], sum = 0;
    for (int64_t j = 0; j < k; ++j) top = std::max(top, double(z[i * k + j]));
    for (int64_t j = 0; j < k; ++j) sum += std::exp(z[i * k + j] - top);
    for (int64_t j = 0; j < k; ++j) {
      const double q = (j == labels.data<int32_t>()[i] ? 1 - eps : 0) + eps / double(k);
      d[i * k + j] = factor * (std::exp(z[i * k + j] - top) / sum - q);
    }
  }
  return d;
}

TEST(LossReduction, SumGradientIsTheFormulaTimesTheRanks) {
  auto backend = make_cpu_backend(1);
  for (int world : {1, 3}) {
    auto model = nn::make_model(small_resnet(), *backend);
    ForwardBackward step(*model, *backend, 0.2f, false, 8, /*sum_over_ranks=*/world);
    Tensor images = host_images(8, 16, 4), labels = host_labels(8, 4);
    step.forward(images, labels);
    int64_t correct = 0;
    const float loss = step.read_loss(correct);
    Tensor dlogits;
    const std::vector<float> z = to_host(*backend, model->forward(images, true));
    const float mean_loss =
        backend->softmax_cross_entropy(model->forward(images, true), labels, 0.2f, dlogits, correct);
    EXPECT_EQ(loss, mean_loss) << "the reported loss stays the batch mean";
    const auto expect = summed_gradient(z, labels, 10, 0.2, world);
    const auto got = to_host(*backend, step.dlogits());
    EXPECT_LT(max_abs_difference(got, expect), 2e-6 * world) << "world " << world;
  }
}

// Two ranks' halves with the summed reduction, averaged as the gradient reducer does, equal
// the sum of each half's one-rank summed gradients: the global batch's summed gradient.
TEST(LossReduction, TwoRanksAveragedEqualOneRanksSum) {
  auto backend = make_cpu_backend(1);
  std::vector<double> averaged, summed;
  for (uint32_t half = 0; half < 2; ++half) {
    Tensor images = host_images(4, 16, 10 + half), labels = host_labels(4, half);
    for (int world : {2, 1}) {
      auto model = nn::make_model(small_resnet(), *backend);
      ForwardBackward step(*model, *backend, 0.1f, false, 4, world);
      step.forward(images, labels);
      step.backward();
      const auto g = to_host(*backend, model->grads());
      auto& into = world == 2 ? averaged : summed;
      into.resize(g.size(), 0.0);
      for (size_t i = 0; i < g.size(); ++i) into[i] += world == 2 ? g[i] / 2.0 : g[i];
    }
  }
  double worst = 0, scale = 0;
  for (size_t i = 0; i < summed.size(); ++i) {
    worst = std::max(worst, abs_difference(averaged[i], summed[i]));
    scale = std::max(scale, std::abs(summed[i]));
  }
  EXPECT_GT(scale, 0);
  EXPECT_LE(worst, 1e-6 * scale);
}

}  // namespace
}  // namespace dp::test
