// BatchNorm2d over the channel (last) axis, optionally fused with the ReLU that follows it
// (conv -> BN -> ReLU is the common pattern; fusing saves one activation pass each way).
// Registers "<name>.weight", "<name>.bias" and the buffers "<name>.running_mean",
// "<name>.running_var", "<name>.num_batches_tracked" (one f32 element, counted on the device).
// Where the store has a stats exchange of more than one rank (--sync-bn), a training forward
// and its backward are SyncBatchNorm's (nn/sync_batchnorm.h); evaluation is unchanged.
#pragma once

#include <string>

#include "nn/activations.h"
#include "nn/layer.h"
#include "nn/reusable_buffer.h"
#include "nn/sync_batchnorm.h"

namespace dp::nn {

struct BatchNormOptions {
  float eps = 1e-5f;
  float momentum = 0.1f;  // PyTorch's convention: running = (1 - m) * running + m * batch
  bool fuse_relu = false;
  // The scale stays at its initial 1 (torch: weight.requires_grad = False): "<name>.weight" is
  // still registered, saved and loaded, but not trainable (ParameterStore's StateEntry), and
  // backward writes its gradient as 0.
  bool fixed_weight = false;
};

// `o` with its ReLU fused (the layer's output is relu(bn(x))) or not.
inline BatchNormOptions with_relu(BatchNormOptions o, bool relu) {
  o.fuse_relu = relu;
  return o;
}

class BatchNorm2d : public Layer {
 public:
  BatchNorm2d(ParameterStore& store, const std::string& name, int64_t channels,
              BatchNormOptions options);
  // train: batch statistics, running stats updated, num_batches_tracked += 1;
  // eval: running statistics.
  const Tensor& forward(const Tensor& x, bool train) override;
  Tensor& backward(const Tensor& dy) override;
  // out = relu(forward(x) + residual), the end of a residual block: one backend op in training
  // where the backend fuses it (Backend::fuses_batchnorm_add_relu) and the statistics are this
  // rank's own, else the two. backward is unchanged: it takes the gradient already masked by
  // that ReLU.
  void forward_add_relu(const Tensor& x, const Tensor& residual, Tensor& out, bool train);
  // act.forward(forward(x)), a batch norm and the GELU after it: one backend op in training
  // where the backend fuses the pair (Backend::fuses_batchnorm_gelu) and the statistics are this
  // rank's own, else the two layers in turn. backward_gelu takes the GELU output's gradient and
  // follows the route the last forward_gelu took.
  const Tensor& forward_gelu(const Tensor& x, Gelu& act, bool train);
  Tensor& backward_gelu(const Tensor& dy, Gelu& act);
  const std::string& name() const { return name_; }

 private:
  BatchNormGeometry geometry(const Tensor& x) const;
  // Batch statistics need more than one value per channel (PyTorch refuses one too): a
  // UsageError naming the layer and what to change, not a backend's internal check.
  void require_batch_statistics(const BatchNormGeometry& g) const;
  // The exchange a training pass takes its statistics through; null for this rank's own.
  StatsExchange* exchange() const;

  ParameterStore& store_;
  std::string name_;
  int64_t channels_;
  BatchNormOptions options_;
  ParameterStore::Id weight_, bias_, running_mean_, running_var_, batches_tracked_;
  Tensor x_;
  ReusableBuffer y_, dx_;
  Tensor saved_mean_, saved_var_, workspace_;  // sized by the backend
  SyncBatchNorm sync_;
  bool synced_ = false;  // the last training forward was sync_'s: so is backward
  bool gelu_fused_ = false;  // the last forward_gelu ran the fused op: so does backward_gelu
};

}  // namespace dp::nn
