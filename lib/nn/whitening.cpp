#include "nn/whitening.h"

#include <lapacke.h>

#include <cmath>

#include "core/error.h"

namespace dp::nn {

namespace {

// row[s] += <P_r, P_s> for s = r .. d-1, P_i the i-th `length` doubles of `p`: four at a time,
// so that each load of P_r serves four products.
void add_dots(const double* p, int64_t length, int64_t r, int64_t d, double* row) {
  const double* a = p + r * length;
  int64_t s = r;
  for (; s + 4 <= d; s += 4) {
    const double *z0 = p + s * length, *z1 = z0 + length, *z2 = z1 + length, *z3 = z2 + length;
    double d0 = 0, d1 = 0, d2 = 0, d3 = 0;
#pragma omp simd reduction(+ : d0, d1, d2, d3)
    for (int64_t i = 0; i < length; ++i) {
      d0 += a[i] * z0[i];
      d1 += a[i] * z1[i];
      d2 += a[i] * z2[i];
      d3 += a[i] * z3[i];
    }
    row[s] += d0;
    row[s + 1] += d1;
    row[s + 2] += d2;
    row[s + 3] += d3;
  }
  for (; s < d; ++s) {
    const double* z = p + s * length;
    double dot = 0;
#pragma omp simd reduction(+ : dot)
    for (int64_t i = 0; i < length; ++i) dot += a[i] * z[i];
    row[s] += dot;
  }
}

// Sigma = X^T X / n over every k x k patch, in double, row-major d x d with d = c k^2. Image by
// image, its patches as d rows of doubles (component-major), so that each of Sigma's upper
// entries gathers a contiguous dot product the compiler vectorises (patch-at-a-time outer
// products were 2-3x slower: tests/bench/results/2026-12-07-cpu-whitening-covariance.txt).
std::vector<double> patch_covariance(const float* images, int64_t n, int64_t h, int64_t w,
                                     int64_t c, int64_t k) {
  const int64_t d = c * k * k, rows = h - k + 1, cols = w - k + 1, positions = rows * cols;
  std::vector<double> sigma(d * d, 0.0), patches(d * positions);
  for (int64_t b = 0; b < n; ++b) {
    const float* image = images + b * h * w * c;
    for (int64_t ch = 0; ch < c; ++ch)
      for (int64_t i = 0; i < k; ++i)
        for (int64_t j = 0; j < k; ++j) {
          double* component = patches.data() + ((ch * k + i) * k + j) * positions;
          for (int64_t y = 0; y < rows; ++y)
            for (int64_t x = 0; x < cols; ++x)
              component[y * cols + x] = image[((y + i) * w + x + j) * c + ch];
        }
    for (int64_t r = 0; r < d; ++r) add_dots(patches.data(), positions, r, d, &sigma[r * d]);
  }
  const double count = double(n * positions);
  for (int64_t r = 0; r < d; ++r)
    for (int64_t s = r; s < d; ++s) sigma[s * d + r] = sigma[r * d + s] /= count;
  return sigma;
}

}  // namespace

Whitening whitening_filters(const float* images, int64_t n, int64_t h, int64_t w, int64_t c,
                            int64_t k, double eps) {
  if (k < 1 || k > h || k > w || n < 1)
    throw UsageError(fmt::format("whitening: {}x{} patches of {} images of {}x{}", k, k, n, h, w));
  const int64_t d = c * k * k;
  std::vector<double> a = patch_covariance(images, n, h, w, c, k);
  std::vector<double> ascending(d);
  // Eigenvalues ascending; the eigenvectors overwrite a as its columns (row-major: a[i d + j]
  // is component i of vector j).
  const lapack_int info = LAPACKE_dsyevd(LAPACK_ROW_MAJOR, 'V', 'U', lapack_int(d), a.data(),
                                         lapack_int(d), ascending.data());
  if (info != 0)  // a NaN in the patches, or no convergence: LAPACK's info says which
    throw_library_error(
        ExitCode::internal, __FILE__, __LINE__, "LAPACKE_dsyevd",
        fmt::format("info {} (whitening {}x{} patches of {} images)", info, k, k, n));
  Whitening out;
  out.weight.resize(2 * d * d);
  for (int64_t f = 0; f < d; ++f) {
    const int64_t j = d - 1 - f;  // descending
    out.eigenvalues.push_back(ascending[j]);
    const double scale = 1.0 / std::sqrt(ascending[j] + eps);
    for (int64_t i = 0; i < d; ++i) {
      const auto v = static_cast<float>(a[i * d + j] * scale);
      out.weight[f * d + i] = v;
      out.weight[(d + f) * d + i] = -v;
    }
  }
  return out;
}

std::string apply_whitening(Model& model, const float* images, int64_t n, int64_t h, int64_t w,
                            int64_t c, double eps) {
  for (const StateEntry& e : model.store().entries()) {
    if (e.kind != StateKind::parameter || e.param_role != ParamRole::conv_weight) continue;
    const int64_t k = e.shape.size() == 4 ? e.shape[2] : 0;
    if (e.shape.size() != 4 || e.shape[3] != k || e.shape[1] != c || e.shape[0] != 2 * c * k * k)
      throw UsageError(fmt::format(
          "option --whiten-init: the first convolution {} is {}, not {{2 C k^2, C, k, k}} with "
          "C = {}", e.name, to_string(e.shape), c));
    const Whitening white = whitening_filters(images, n, h, w, c, k, eps);
    model.store().write(e.name, white.weight.data(), white.weight.size());
    return e.name;
  }
  throw UsageError("option --whiten-init: the model has no convolution");
}

}  // namespace dp::nn
