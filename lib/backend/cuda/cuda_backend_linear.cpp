// CudaBackend's linear layer on cuBLAS, which is column-major: a row-major {r, c} matrix is
// its {c, r} transpose. Products in the input's type, f32 accumulation, f32 logits.
#include "backend/cuda/checked_launch.h"
#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/cuda_operands.h"

namespace dp::cuda {
namespace {

cudaDataType_t cublas_type(DType type) { return type == DType::bf16 ? CUDA_R_16BF : CUDA_R_32F; }

}  // namespace

void CudaBackend::gemm(bool transpose_a, bool transpose_b, int m, int n, int k, DType ab_type,
                       const void* a, int lda, const void* b, int ldb, float beta, void* c,
                       DType c_type, int ldc) {
  const float alpha = 1.f;
  // f32 compute for both types: strict FP32 or TF32 as the handle's math mode says, and the
  // f32 accumulation of bf16 products that mixed precision relies on.
  DP_CUBLAS_CHECK(cublas().gemm_ex(ctx_.cublas.get(), transpose_a ? CUBLAS_OP_T : CUBLAS_OP_N,
                                   transpose_b ? CUBLAS_OP_T : CUBLAS_OP_N, m, n, k, &alpha, a,
                                   cublas_type(ab_type), lda, b, cublas_type(ab_type), ldb, &beta,
                                   c, cublas_type(c_type), ldc, CUBLAS_COMPUTE_32F,
                                   CUBLAS_GEMM_DEFAULT));
}

void CudaBackend::linear_forward(const Tensor& x, const Tensor& w, const Tensor& b, Tensor& y) {
  const bool bias = b.defined();  // undefined: no bias
  DP_CHECK(x.rank() == 2 && w.rank() == 2 && x.dim(1) == w.dim(1) &&
               (!bias || b.numel() == w.dim(0)),
           "linear: x {} w {} b {}", to_string(x.shape()), to_string(w.shape()),
           bias ? to_string(b.shape()) : "none");
  check_device(x, "linear_forward", "input");
  check_device(w, "linear_forward", "weight");
  if (bias) check_device(b, "linear_forward", "bias");
  const int n = static_cast<int>(x.dim(0)), in = static_cast<int>(x.dim(1)),
            out = static_cast<int>(w.dim(0));
  // The products in the input's type (bf16 under mixed precision: the f32 weights are
  // rounded for the call), the logits always f32 for the loss.
  const DType type = x.dtype();
  const void* weights = in_type(w, type, ctx_.weights);
  output(y, {x.dim(0), w.dim(0)});
  if (bias) checked_launch([&] { kernels::broadcast_rows(f(b), f(y), n, out, ctx_.s()); });
  // y^T (out x n) = W (out x in; column-major W^T) * x^T (in x n), plus the broadcast bias
  // (beta 1) or nothing (beta 0: y's old contents are not read).
  gemm(true, false, out, n, in, type, weights, in, x.data<void>(), in, bias ? 1.f : 0.f, f(y),
       DType::f32, out);
}

void CudaBackend::linear_backward(const Tensor& x, const Tensor& w, const Tensor& dy, Tensor& dx,
                                  Tensor& dw, Tensor& db) {
  DP_CHECK(x.rank() == 2 && w.rank() == 2 && dy.rank() == 2 && x.dim(1) == w.dim(1) &&
               dy.dim(0) == x.dim(0) && dy.dim(1) == w.dim(0),
           "linear backward: x {} w {} dy {}", to_string(x.shape()), to_string(w.shape()),
           to_string(dy.shape()));
  check_device(x, "linear_backward", "input");
  check_device(w, "linear_backward", "weight");
  check_device(dy, "linear_backward", "output gradient");
  DP_CHECK(dy.dtype() == DType::f32, "linear backward: the logits' gradient must be f32");
  const int n = static_cast<int>(x.dim(0)), in = static_cast<int>(x.dim(1)),
            out = static_cast<int>(w.dim(0));
  const DType type = x.dtype();
  const void* weights = in_type(w, type, ctx_.weights);
  const void* grad = in_type(dy, type, ctx_.converted);
  output(dx, x.shape(), type);
  output(dw, w.shape());
  output(db, {w.dim(0)});
  // dx^T (in x n) = W^T (in x out) * dy^T (out x n)
  gemm(false, false, in, n, out, type, weights, in, grad, out, 0.f, dx.data<void>(), type, in);
  // dW^T (in x out) = x^T (in x n) * dy (n x out), accumulated and stored in f32
  gemm(false, true, in, out, n, type, x.data<void>(), in, grad, out, 0.f, f(dw), DType::f32, in);
  checked_launch([&] { kernels::column_sums(f(dy), f(db), n, out, ctx_.s()); });
}

}  // namespace dp::cuda
