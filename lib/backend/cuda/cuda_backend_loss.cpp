// CudaBackend's softmax cross-entropy: queued on the stream (per-row loss, hit and bad-label
// flags), then read back in one transfer, averaged and checked on the host.
#include <cstring>

#include "backend/cuda/checked_launch.h"
#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/cuda_operands.h"

namespace dp::cuda {

float CudaBackend::softmax_cross_entropy(const Tensor& logits, const Tensor& labels,
                                         float label_smoothing, Tensor& dlogits,
                                         int64_t& correct) {
  queue_softmax_cross_entropy(logits, labels, label_smoothing, dlogits);
  return read_queued_loss(logits, labels, correct);
}

void CudaBackend::queue_softmax_cross_entropy(const Tensor& logits, const Tensor& labels,
                                              float label_smoothing, Tensor& dlogits) {
  check_loss_operands(logits, labels);
  check_device(logits, "softmax_cross_entropy", "logits");
  DP_CHECK(logits.dtype() == DType::f32, "softmax_cross_entropy: the logits must be f32");
  check_device(labels, "softmax_cross_entropy", "labels");
  const int64_t n = logits.dim(0), k = logits.dim(1);
  output(dlogits, logits.shape());
  output(loss_rows_, {3 * n}, DType::i32);
  auto* row_loss = loss_rows_.data<float>();
  auto* hit = loss_rows_.data<int32_t>() + n;
  auto* bad = loss_rows_.data<int32_t>() + 2 * n;
  checked_launch([&] {
    kernels::softmax_cross_entropy(f(logits), labels.data<int32_t>(), n, k, label_smoothing,
                                   f(dlogits), row_loss, hit, bad, ctx_.s());
  });
}

float CudaBackend::read_queued_loss(const Tensor& logits, const Tensor& labels,
                                    int64_t& correct) {
  const int64_t n = logits.dim(0), k = logits.dim(1);
  // A replayed graph writes n rows without running the host code that shapes loss_rows_, so
  // its shape may still be an earlier eager step's (a partial batch's): its room is what counts.
  DP_CHECK(loss_rows_.defined() && loss_rows_.capacity() >= size_t(3 * n) * sizeof(int32_t),
           "read_queued_loss: no loss of {} rows was queued", n);
  loss_rows_.ensure({3 * n}, DType::i32);
  loss_host_.resize(3 * n * sizeof(int32_t));
  DP_CUDA_CHECK(cudaMemcpyAsync(loss_host_.data(), loss_rows_.data<void>(), loss_host_.size(),
                                cudaMemcpyDeviceToHost, ctx_.s()));
  DP_CUDA_CHECK(cudaStreamSynchronize(ctx_.s()));
  std::vector<float> loss(n);
  std::vector<int32_t> flags(2 * n);
  std::memcpy(loss.data(), loss_host_.data(), n * sizeof(float));
  std::memcpy(flags.data(), loss_host_.data() + n * sizeof(float), 2 * n * sizeof(int32_t));
  for (int64_t i = 0; i < n; ++i)
    if (flags[n + i]) {
      int32_t label = 0;
      DP_CUDA_CHECK(cudaMemcpy(&label, labels.data<int32_t>() + i, sizeof(label),
                               cudaMemcpyDeviceToHost));
      throw DataError(fmt::format("label {} of sample {} is outside [0, {})", label, i, k));
    }
  double total = 0;
  int64_t hits = 0;
  for (int64_t i = 0; i < n; ++i) {
    total += loss[i];
    hits += flags[i];
  }
  correct = hits;
  return static_cast<float>(total / static_cast<double>(n));
}

}  // namespace dp::cuda
