// The whitening initialisation against numpy.linalg.eigh (tests/nn/whitening_reference.py, the
// same 16 deterministic 6x6x3 images): eigenvalues descending, and the filters up to each
// one's sign (fixed here as there: largest-magnitude component positive); the second half of
// the weight is the first negated; and, with no reference at all, W^T W = (Sigma + eps I)^-1.
#include <gtest/gtest.h>

#include <cmath>

#include "core/error.h"
#include "backend/backend.h"
#include "nn/whitening.h"

namespace dp::nn {
namespace {

constexpr int64_t N = 16, H = 6, W = 6, C = 3, K = 2, D = C * K * K;

std::vector<float> images() {
  std::vector<float> v(N * H * W * C);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t y = 0; y < H; ++y)
      for (int64_t x = 0; x < W; ++x)
        for (int64_t c = 0; c < C; ++c)
          v[((n * H + y) * W + x) * C + c] = static_cast<float>(
              std::sin(0.7 * n + 1.3 * y + 0.9 * x + 2.1 * c) +
              0.3 * std::cos(1.1 * double(n * y) - 0.5 * double(x * c)) + 0.2 * c);
  return v;
}

const double kEigenvalues[D] = {3.2538441643167952, 3.041020958030728, 0.7152654168432941, 0.11647332518626538, 0.09818374040290008, 0.06709339074496884, 0.01578836312560221, 0.009206883950482726, 0.0046788905584446445, 0.0036717311109366745, 0.0009862854132417786, 0.0002696738828459823};
const double kFilters[D * D] = {0.0265342202, -0.14379548, -0.199838144, -0.188499488, -0.171118039, -0.0336842412, 0.0408723381, 0.19659909, 0.205106326, 0.235074857, 0.201037309, 0.0441641802,
-0.232195096, -0.166394502, -0.0849059024, 0.114694919, 0.0947359203, 0.225581242, 0.238596332, 0.127210318, 0.136502133, -0.0635600703, -0.133966057, -0.230705783,
0.102275756, 0.303585392, 0.269341315, 0.24728493, 0.581626431, 0.381589042, 0.248870964, 0.0762626176, 0.348901472, 0.257597094, 0.361522319, 0.538839163,
-0.0134051416, -0.046186163, 1.12299188, 1.03264895, -0.835040084, -1.0207746, 1.34621223, 1.13799861, -0.838629582, -0.119180636, 0.8026751, -0.103818647,
1.49621921, 1.29440627, -1.08416247, -0.839350053, 0.638797444, 0.232236291, 0.686074849, 1.08099092, -0.424086924, -1.20867768, 0.255893554, -0.729271147,
-1.62369605, -1.01438857, -0.847832152, -0.656713414, 0.48940717, 0.19467733, -0.142827505, 0.285020552, -1.23413062, -1.81658598, 1.21367739, 1.8176221,
-2.23873637, 2.48794198, -2.51086124, -0.86377446, 0.632783719, -1.10742188, 2.7681902, -0.25327852, -3.08967176, 3.74261963, -2.76888047, 1.60231059,
-1.31090402, -0.5436868, 1.64897357, -2.52447861, 2.57652901, 1.67686204, -0.287182201, -2.25461847, -3.81750176, 3.0995667, 5.18834014, -5.11838336,
3.46933499, -4.09936437, 3.6223883, -1.7296608, 0.00941979127, 5.93517781, -3.14507839, 6.54507893, -5.37136565, 2.78980386, -4.40088595, 2.04418188,
2.59081642, 0.744892419, -7.12937927, 9.15244582, -4.95700523, 6.05243987, -1.74195013, -2.38214762, -3.81463702, 1.40296951, 3.37276745, 0.194546634,
-12.5078958, 15.3505827, 3.7703962, -1.5811254, -7.73168912, 5.58611797, -9.13346888, 8.60688503, 2.45992005, -0.886173873, 1.74044552, -2.38043572,
-2.77238571, -2.31349094, -8.36678091, 13.2191308, 17.4710657, -15.2348364, -16.2713379, 13.6079249, -0.576428109, 5.14805132, 0.811468341, -5.16731544};

TEST(Whitening, MatchesNumpyEighUpToSign) {
  const auto data = images();
  const Whitening white = whitening_filters(data.data(), N, H, W, C, K);
  ASSERT_EQ(white.eigenvalues.size(), size_t(D));
  ASSERT_EQ(white.weight.size(), size_t(2 * D * D));
  double worst_value = 0, worst_filter = 0;
  for (int64_t f = 0; f < D; ++f) {
    worst_value = std::max(worst_value, std::abs(white.eigenvalues[f] - kEigenvalues[f]) /
                                            kEigenvalues[f]);
    int64_t top = 0;
    for (int64_t i = 0; i < D; ++i)
      if (std::abs(white.weight[f * D + i]) > std::abs(white.weight[f * D + top])) top = i;
    const double sign = white.weight[f * D + top] > 0 ? 1 : -1;
    for (int64_t i = 0; i < D; ++i) {
      const double got = sign * white.weight[f * D + i], want = kFilters[f * D + i];
      worst_filter = std::max(worst_filter, std::abs(got - want) / std::max(1.0, std::abs(want)));
      EXPECT_EQ(white.weight[(D + f) * D + i], -white.weight[f * D + i]);
    }
  }
  std::cout << "whitening vs numpy: eigenvalues rel " << worst_value << ", filters " << worst_filter
            << "\n";
  EXPECT_LT(worst_value, 1e-9);
  EXPECT_LT(worst_filter, 1e-5);
}

TEST(Whitening, FiltersInvertTheRegularisedCovariance) {
  const auto data = images();
  const Whitening white = whitening_filters(data.data(), N, H, W, C, K);
  // Sigma from the patches, in double, independently of the implementation.
  std::vector<double> sigma(D * D, 0.0);
  int64_t count = 0;
  for (int64_t n = 0; n < N; ++n)
    for (int64_t y = 0; y + K <= H; ++y)
      for (int64_t x = 0; x + K <= W; ++x, ++count) {
        double p[D];
        for (int64_t c = 0; c < C; ++c)
          for (int64_t i = 0; i < K; ++i)
            for (int64_t j = 0; j < K; ++j)
              p[(c * K + i) * K + j] = data[((n * H + y + i) * W + x + j) * C + c];
        for (int64_t r = 0; r < D; ++r)
          for (int64_t s = 0; s < D; ++s) sigma[r * D + s] += p[r] * p[s];
      }
  for (double& s : sigma) s /= double(count);
  for (int64_t r = 0; r < D; ++r) sigma[r * D + r] += 5e-4;
  double worst = 0;
  for (int64_t r = 0; r < D; ++r)
    for (int64_t s = 0; s < D; ++s) {
      double v = 0;  // (W^T W Sigma')[r, s]
      for (int64_t t = 0; t < D; ++t) {
        double wtw = 0;
        for (int64_t f = 0; f < D; ++f) wtw += double(white.weight[f * D + r]) * white.weight[f * D + t];
        v += wtw * sigma[t * D + s];
      }
      worst = std::max(worst, std::abs(v - (r == s ? 1.0 : 0.0)));
    }
  EXPECT_LT(worst, 1e-4);
  EXPECT_THROW(whitening_filters(data.data(), N, H, W, C, 7), UsageError);
}

// A model of one 2x2 convolution {24, 3, 2, 2} after a 3x3 one, for apply_whitening.
class TwoConvs : public Model {
 public:
  TwoConvs(Backend& backend, Shape first) : Model(ModelSpec{}, backend) {
    store_->add_parameter("whiten.weight", first, ParamRole::conv_weight);
    store_->add_parameter("whiten.bias", {first[0]}, ParamRole::linear_bias);
    store_->add_parameter("next.weight", {8, first[0], 3, 3}, ParamRole::conv_weight);
    store_->finalize();
    backend.fill(store_->params(), 0.5f);
  }
  const Tensor& forward(const Tensor&, bool) override { throw Error(ExitCode::internal, "-"); }
  void backward(const Tensor&) override {}
  void set_input_grad(bool) override {}
  const Tensor& input_grad() const override { throw Error(ExitCode::internal, "-"); }
};

TEST(Whitening, ApplyWritesTheFirstConvolutionOnlyAndRefusesOtherShapes) {
  auto backend = make_cpu_backend(1);
  TwoConvs model(*backend, {2 * D, C, K, K});
  const auto data = images();
  EXPECT_EQ(apply_whitening(model, data.data(), N, H, W, C), "whiten.weight");
  std::vector<float> got(2 * D * D), next(8 * 2 * D * 9);
  model.store().read("whiten.weight", got.data(), got.size());
  model.store().read("next.weight", next.data(), next.size());
  EXPECT_EQ(got, whitening_filters(data.data(), N, H, W, C, K).weight);
  for (float v : next) ASSERT_EQ(v, 0.5f);
  TwoConvs wrong(*backend, {16, C, K, K});
  EXPECT_THROW(apply_whitening(wrong, data.data(), N, H, W, C), UsageError);
}

}  // namespace
}  // namespace dp::nn
