// The whitening initialisation of a first k x k convolution (airbench94's): from the patches
// of the first images (normalised, not augmented),
//   Sigma = X^T X / n over every k x k patch (all positions, valid, stride 1; not centred),
// its eigendecomposition (LAPACK's dsyevd through LAPACKE, in double), eigenpairs sorted by
// descending eigenvalue, filters W_i = v_i / sqrt(lambda_i + eps), and the weight [+W; -W]:
// 2 C k^2 filters of shape {C, k, k}. A patch vector and a filter are ordered as PyTorch's
// OIHW weight rows: index (c * k + i) * k + j.
#pragma once

#include <cstdint>
#include <vector>

#include "nn/model.h"

namespace dp::nn {

struct Whitening {
  std::vector<double> eigenvalues;  // descending, C k^2
  std::vector<float> weight;        // {2 C k^2, C, k, k}: [+W; -W]
};

// `images`: n NHWC float images of h x w x c. Throws UsageError when k exceeds the image.
Whitening whitening_filters(const float* images, int64_t n, int64_t h, int64_t w, int64_t c,
                            int64_t k, double eps = 5e-4);

// Writes whitening_filters of `images` into the model's first convolution weight, which must
// be {2 C k^2, C, k, k}; throws UsageError naming it otherwise. Returns its name.
std::string apply_whitening(Model& model, const float* images, int64_t n, int64_t h, int64_t w,
                            int64_t c, double eps = 5e-4);

}  // namespace dp::nn
