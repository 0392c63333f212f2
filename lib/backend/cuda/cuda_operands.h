// What the CudaBackend op files (cuda_backend*.cpp) share about their operands: the checks that
// throw a dp::Error naming the op (with the backend-neutral ones of operand_checks.h), and the
// f32 data accessor the library calls and kernels take.
#pragma once

#include "backend/operand_checks.h"
#include "core/error.h"
#include "core/tensor.h"

namespace dp::cuda {

inline void check_device(const Tensor& t, const char* op, const char* what) {
  DP_CHECK(t.defined() && t.device() == Device::cuda, "{}: {} must be a CUDA tensor", op, what);
}

inline void check_same_type(const Tensor& a, const Tensor& b, const char* op) {
  DP_CHECK(a.dtype() == b.dtype(), "{}: tensors of different element types", op);
}

// The data of an f32 tensor (parameters and their gradients, batch-norm statistics, logits).
inline const float* f(const Tensor& t) { return t.data<float>(); }
inline float* f(Tensor& t) { return t.data<float>(); }

}  // namespace dp::cuda
