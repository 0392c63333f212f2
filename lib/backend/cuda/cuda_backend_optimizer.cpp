// CudaBackend's optimizer step (PyTorch SGD over the flat buffers) and the sum of squares that
// the gradient-norm checks read back.
#include <numeric>

#include "backend/cuda/checked_launch.h"
#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/cuda_operands.h"

namespace dp::cuda {

void CudaBackend::sgd_step(const SgdHyper& h, Tensor& params, const Tensor& grads,
                           Tensor& momentum_buffer, const Tensor& decay_mask) {
  check_same_numel(params, grads, "sgd_step grads");
  check_device(params, "sgd_step", "parameters");
  check_device(grads, "sgd_step", "gradients");
  const bool use_momentum = h.momentum != 0.f;
  if (use_momentum) {
    check_same_numel(params, momentum_buffer, "sgd_step momentum buffer");
    check_device(momentum_buffer, "sgd_step", "momentum buffer");
  }
  const bool masked = decay_mask.defined();
  if (masked) {
    check_same_numel(params, decay_mask, "sgd_step decay mask");
    check_device(decay_mask, "sgd_step", "decay mask");
  }
  checked_launch([&] {
    kernels::sgd_step(h, f(params), f(grads), use_momentum ? f(momentum_buffer) : nullptr,
                      masked ? f(decay_mask) : nullptr, params.numel(), ctx_.s());
  });
}

double CudaBackend::sum_of_squares(const Tensor& t) {
  check_device(t, "sum_of_squares", "tensor");
  DP_CHECK(t.dtype() == DType::f32, "sum_of_squares: f32 tensors only");
  const int blocks = kernels::sum_of_squares_blocks(t.numel());
  output(norm_partials_, {2 * static_cast<int64_t>(blocks)}, DType::i32);  // doubles
  auto* partials = norm_partials_.data<double>();
  checked_launch([&] { kernels::sum_of_squares(f(t), t.numel(), partials, blocks, ctx_.s()); });
  std::vector<double> host(blocks);
  DP_CUDA_CHECK(cudaMemcpyAsync(host.data(), partials, blocks * sizeof(double),
                                cudaMemcpyDeviceToHost, ctx_.s()));
  DP_CUDA_CHECK(cudaStreamSynchronize(ctx_.s()));
  return std::accumulate(host.begin(), host.end(), 0.0);
}

}  // namespace dp::cuda
