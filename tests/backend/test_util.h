// Helpers for the backend tests: the backend under test, random tensors, the random-projection
// loss L = sum(y * r), a central-difference gradient checker, and tensor comparison in double
// precision.
#pragma once

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <random>
#include <string>

#include "backend/backend.h"
#include "core/error.h"
#include "core/tensor.h"
#include "support/max_difference.h"
#ifdef DP_TEST_ON_CUDA
#include "backend/cuda/make_cuda_backend.h"
#endif
#if defined(DP_TEST_ON_CUDA) || defined(DP_TEST_STAGED_CPU)
#include "staged_backend.h"
#endif

namespace dp::test {

// The same test sources build twice: against the CPU backend (test_cpu_backend) and, with
// DP_TEST_ON_CUDA, against the CUDA backend behind host staging (test_cuda_backend, whose
// main skips every test where no GPU is usable). Strict FP32, so the tolerances hold.
inline std::unique_ptr<Backend> make_backend_under_test() {
#if defined(DP_TEST_ON_CUDA)
  CudaOptions options;
  options.allow_tf32 = false;
  return std::make_unique<HostStagedBackend>(make_cuda_backend(options));
#elif defined(DP_TEST_STAGED_CPU)  // checks the staging harness itself, without a GPU
  return std::make_unique<HostStagedBackend>(make_cpu_backend());
#else
  return make_cpu_backend();
#endif
}

// `op` throws a dp::Error whose message contains `fragment` (which operand or check refused).
inline void expect_error_mentioning(const std::function<void()>& op, const std::string& fragment) {
  try {
    op();
    ADD_FAILURE() << "no error; expected one mentioning '" << fragment << "'";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
  }
}

inline Tensor random_tensor(const Shape& shape, std::mt19937& gen, float lo = -1.f,
                            float hi = 1.f) {
  Tensor t = Tensor::empty(shape);
  std::uniform_real_distribution<float> dist(lo, hi);
  for (int64_t i = 0; i < t.numel(); ++i) t.data()[i] = dist(gen);
  return t;
}

// Values whose magnitude stays at least `margin` away from zero (for ReLU kinks).
inline Tensor random_away_from_zero(const Shape& shape, std::mt19937& gen, float margin) {
  Tensor t = random_tensor(shape, gen, margin, 1.f);
  std::bernoulli_distribution sign(0.5);
  for (int64_t i = 0; i < t.numel(); ++i)
    if (sign(gen)) t.data()[i] = -t.data()[i];
  return t;
}

// A tensor's values in NHWC order: itself when its layout is nhwc, else a host copy unpacked
// from the CPU backend's nChw16c (memory order {N, C/16, H, W, 16}) by plain index arithmetic,
// an oracle independent of the oneDNN reorders the backend uses.
inline Tensor in_nhwc_order(const Tensor& t) {
  if (t.layout() == Layout::nhwc) return t;
  const int64_t n = t.dim(0), hw = t.dim(1) * t.dim(2), c = t.dim(3);
  Tensor out = Tensor::empty(t.shape());
  for (int64_t i = 0; i < n; ++i)
    for (int64_t p = 0; p < hw; ++p)
      for (int64_t k = 0; k < c; ++k)
        out.data()[(i * hw + p) * c + k] = t.data()[((i * (c / 16) + k / 16) * hw + p) * 16 + k % 16];
  return out;
}

// The inverse: an NHWC host tensor's values in nChw16c order, tagged so (c a multiple of 16).
inline Tensor in_blocked_order(const Tensor& nhwc) {
  const int64_t n = nhwc.dim(0), hw = nhwc.dim(1) * nhwc.dim(2), c = nhwc.dim(3);
  Tensor out = Tensor::empty(nhwc.shape());
  for (int64_t i = 0; i < n; ++i)
    for (int64_t p = 0; p < hw; ++p)
      for (int64_t k = 0; k < c; ++k)
        out.data()[((i * (c / 16) + k / 16) * hw + p) * 16 + k % 16] =
            nhwc.data()[(i * hw + p) * c + k];
  out.set_layout(Layout::nchw16c);
  return out;
}

inline Tensor copy_of(const Tensor& t) {
  Tensor c = Tensor::empty(t.shape(), t.dtype());
  std::copy_n(t.data<char>(), t.bytes(), c.data<char>());
  c.set_layout(t.layout());
  return c;
}

inline double dot(const Tensor& a_any, const Tensor& b_any) {
  const Tensor a = in_nhwc_order(a_any), b = in_nhwc_order(b_any);
  EXPECT_EQ(a.numel(), b.numel());
  double s = 0;
  for (int64_t i = 0; i < a.numel(); ++i) s += static_cast<double>(a.data()[i]) * b.data()[i];
  return s;
}

// max |a - b| / max(|b|): relative to the reference's scale, so tiny entries do not dominate.
inline double relative_max_error(const Tensor& a_any, const Tensor& ref_any) {
  const Tensor a = in_nhwc_order(a_any), ref = in_nhwc_order(ref_any);
  EXPECT_EQ(a.numel(), ref.numel());
  double err = 0, scale = 0;
  for (int64_t i = 0; i < ref.numel(); ++i) {
    err = std::max(err, abs_difference(a.data()[i], ref.data()[i]));
    scale = std::max(scale, std::abs(static_cast<double>(ref.data()[i])));
  }
  return err / std::max(scale, 1e-12);
}

#define EXPECT_CLOSE(actual, reference, tol) \
  EXPECT_LT(::dp::test::relative_max_error(actual, reference), tol) << #actual " vs " #reference

// Central differences of `loss` with respect to (a sample of) the entries of `input`, compared
// with `analytic` (the backend's gradient). `loss` must read `input` afresh on every call.
inline void expect_gradient(const std::string& what, Tensor& input, const Tensor& analytic,
                            const std::function<double()>& loss, float eps = 1e-2f,
                            double tol = 1e-2, int max_checks = 80, unsigned seed = 7) {
  ASSERT_EQ(input.numel(), analytic.numel()) << what;
  ASSERT_EQ(input.layout(), Layout::nhwc) << what << ": perturbs the input in NHWC order";
  const Tensor analytic_nhwc = in_nhwc_order(analytic);
  std::vector<int64_t> idx(input.numel());
  for (int64_t i = 0; i < input.numel(); ++i) idx[i] = i;
  if (input.numel() > max_checks) {
    std::mt19937 gen(seed);
    std::shuffle(idx.begin(), idx.end(), gen);
    idx.resize(max_checks);
  }
  double err = 0, scale = 0;
  int64_t worst = -1;
  double worst_a = 0, worst_n = 0;
  for (int64_t i : idx) {
    float saved = input.data()[i];
    input.data()[i] = saved + eps;
    double plus = loss();
    input.data()[i] = saved - eps;
    double minus = loss();
    input.data()[i] = saved;
    double numeric = (plus - minus) / (2.0 * eps);
    double a = analytic_nhwc.data()[i];
    if (abs_difference(a, numeric) > err) {
      err = abs_difference(a, numeric);
      worst = i;
      worst_a = a;
      worst_n = numeric;
    }
    scale = std::max(scale, std::abs(numeric));
  }
  ASSERT_GT(scale, 1e-6) << what << ": numeric gradient is all zero, the check would be vacuous";
  EXPECT_LT(err / scale, tol) << what << ": worst element " << worst << " analytic " << worst_a
                              << " numeric " << worst_n << " (scale " << scale << ")";
}

}  // namespace dp::test
