// Softmax cross-entropy (with and without label smoothing) and the SGD step of the CPU
// backend against naive references written from PyTorch's definitions, plus a hand-computed
// PyTorch trace for Nesterov momentum with weight decay.
#include <gtest/gtest.h>

#include "backend/backend.h"
#include "core/error.h"
#include "test_util.h"

namespace dp::test {
namespace {

// torch.nn.functional.cross_entropy(z, y, label_smoothing=eps), in double.
double naive_cross_entropy(const Tensor& z, const std::vector<int32_t>& labels, double eps) {
  const int64_t n = z.dim(0), k = z.dim(1);
  double total = 0;
  for (int64_t i = 0; i < n; ++i) {
    double mx = -1e300, sum = 0;
    for (int64_t j = 0; j < k; ++j) mx = std::max(mx, static_cast<double>(z.data()[i * k + j]));
    for (int64_t j = 0; j < k; ++j) sum += std::exp(z.data()[i * k + j] - mx);
    double lse = mx + std::log(sum), smooth = 0;
    for (int64_t j = 0; j < k; ++j) smooth += (lse - z.data()[i * k + j]) / k;
    total += (1 - eps) * (lse - z.data()[i * k + labels[i]]) + eps * smooth;
  }
  return total / n;
}

Tensor labels_tensor(const std::vector<int32_t>& v) {
  Tensor t = Tensor::empty({static_cast<int64_t>(v.size())}, DType::i32);
  std::copy(v.begin(), v.end(), t.data<int32_t>());
  return t;
}

class CpuCrossEntropy : public ::testing::TestWithParam<float> {};

TEST_P(CpuCrossEntropy, LossAccuracyAndGradient) {
  const float eps = GetParam();
  auto be = make_backend_under_test();
  std::mt19937 gen(51);
  const int64_t n = 6, k = 10;
  Tensor z = random_tensor({n, k}, gen, -3.f, 3.f);
  std::vector<int32_t> labels{0, 3, 9, 3, 5, 1};
  // make two rows predict their label, so the hit count is not trivially 0
  z.data()[0 * k + 0] = 10.f;
  z.data()[2 * k + 9] = 10.f;
  int64_t hits_ref = 0;
  for (int64_t i = 0; i < n; ++i) {
    int64_t am = std::max_element(z.data() + i * k, z.data() + (i + 1) * k) - (z.data() + i * k);
    hits_ref += am == labels[i];
  }
  Tensor y = labels_tensor(labels), dz;
  int64_t hits = -1;
  float loss = be->softmax_cross_entropy(z, y, eps, dz, hits);
  EXPECT_NEAR(loss, naive_cross_entropy(z, labels, eps), 1e-5);
  EXPECT_EQ(hits, hits_ref);
  EXPECT_GE(hits, 2);

  expect_gradient(
      "cross-entropy dlogits", z, dz,
      [&] {
        Tensor scratch;
        int64_t c;
        return static_cast<double>(be->softmax_cross_entropy(z, y, eps, scratch, c));
      },
      1e-2f, 2e-2, 60);
}

INSTANTIATE_TEST_SUITE_P(LabelSmoothing, CpuCrossEntropy, ::testing::Values(0.f, 0.1f, 1.f));

TEST(CpuCrossEntropyErrors, LabelOutOfRangeIsADataError) {
  auto be = make_backend_under_test();
  Tensor z = Tensor::zeros({2, 3}), dz;
  Tensor y = labels_tensor({0, 3});
  int64_t c;
  EXPECT_THROW(be->softmax_cross_entropy(z, y, 0.f, dz, c), dp::DataError);
}

// Logits that are not {n, k} or labels that are not one i32 per row: an internal error on
// every backend (both share check_loss_operands), before any label is read.
TEST(CpuCrossEntropyErrors, OperandShapesAreChecked) {
  auto be = make_backend_under_test();
  Tensor dz;
  int64_t c;
  expect_error_mentioning(
      [&] { be->softmax_cross_entropy(Tensor::zeros({2, 3}), labels_tensor({0}), 0.f, dz, c); },
      "softmax_cross_entropy: logits (2, 3) labels (1)");
  expect_error_mentioning(
      [&] { be->softmax_cross_entropy(Tensor::zeros({6}), labels_tensor({0, 1}), 0.f, dz, c); },
      "softmax_cross_entropy: logits (6)");
}

// torch.optim.SGD's update in double: the first update creates the buffer as d (no
// dampening), later ones dampen.
void naive_sgd(const SgdHyper& h, std::vector<double>& w, const std::vector<double>& g,
               std::vector<double>& buf, const std::vector<double>* mask) {
  for (size_t i = 0; i < w.size(); ++i) {
    double d = g[i];
    if (!mask || (*mask)[i] == 1.0) d += h.weight_decay * w[i];
    if (h.momentum != 0) {
      buf[i] = h.first_step ? d : h.momentum * buf[i] + (1 - h.dampening) * d;
      d = h.nesterov ? d + h.momentum * buf[i] : buf[i];
    }
    w[i] -= h.lr * d;
  }
}

TEST(CpuSgd, MatchesNaiveOverSeveralSteps) {
  auto be = make_backend_under_test();
  struct Case {
    SgdHyper h;
    bool masked;
  };
  const Case cases[] = {
      {{0.1f, 0.9f, 0.f, 5e-4f, false}, false},
      {{0.1f, 0.9f, 0.f, 1e-2f, true}, true},
      {{0.05f, 0.8f, 0.3f, 1e-3f, false}, true},
      {{0.2f, 0.f, 0.f, 1e-2f, false}, false},
  };
  for (const auto& tc : cases) {
    SCOPED_TRACE(
        fmt::format("momentum {} nesterov {} masked {}", tc.h.momentum, tc.h.nesterov, tc.masked));
    std::mt19937 gen(61);
    const int64_t n = 40000;
    Tensor w = random_tensor({n}, gen), buf = Tensor::zeros({n}), mask;
    std::vector<double> wr(w.data(), w.data() + n), bufr(n, 0.0), maskr(n);
    if (tc.masked) {
      mask = Tensor::empty({n});
      for (int64_t i = 0; i < n; ++i) maskr[i] = mask.data()[i] = (i % 3 == 0) ? 0.f : 1.f;
    }
    for (int step = 0; step < 3; ++step) {
      Tensor g = random_tensor({n}, gen);
      std::vector<double> gr(g.data(), g.data() + n);
      SgdHyper h = tc.h;
      h.first_step = step == 0;
      be->sgd_step(h, w, g, buf, mask);
      naive_sgd(h, wr, gr, bufr, tc.masked ? &maskr : nullptr);
    }
    EXPECT_LT(max_abs_difference(w.data(), wr.data(), size_t(n)), 1e-5);
  }
}

TEST(CpuSgd, NesterovWithWeightDecayMatchesPyTorchTrace) {
  // torch.optim.SGD([w], lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.1), w=1, grad=0.5
  // for two steps gives w = 0.886, then 0.725566.
  auto be = make_backend_under_test();
  Tensor w = Tensor::empty({1}), g = Tensor::empty({1}), buf = Tensor::zeros({1});
  w.data()[0] = 1.f;
  g.data()[0] = 0.5f;
  SgdHyper h{0.1f, 0.9f, 0.f, 0.1f, true};
  be->sgd_step(h, w, g, buf, Tensor{});
  EXPECT_NEAR(w.data()[0], 0.886f, 1e-6);
  be->sgd_step(h, w, g, buf, Tensor{});
  EXPECT_NEAR(w.data()[0], 0.725566f, 1e-6);
}

TEST(CpuSgd, DampeningFactorIsTorchsRoundedOnce) {
  // torch.optim.SGD([w], lr=1, momentum=0.9, dampening=0.9), w=0, gradients 0 then 1: the buffer
  // is 0 after the first update, then 0.9*0 + float(1 - 0.9)*1 = 0.10000000149011612 and
  // w = -0.10000000149011612 (torch 1.13). Dampening kept as a float gives 1.f - 0.9f =
  // 0.10000002384185791.
  auto be = make_backend_under_test();
  Tensor w = Tensor::zeros({1}), g = Tensor::zeros({1}), buf = Tensor::zeros({1});
  SgdHyper h{1.f, 0.9f, 0.9, 0.f, false};
  h.first_step = true;
  be->sgd_step(h, w, g, buf, Tensor{});
  g.data()[0] = 1.f;
  h.first_step = false;
  be->sgd_step(h, w, g, buf, Tensor{});
  EXPECT_EQ(buf.data()[0], 0.10000000149011612f);
  EXPECT_EQ(w.data()[0], -0.10000000149011612f);
}

}  // namespace
}  // namespace dp::test
