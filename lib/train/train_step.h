// One synchronous data-parallel training step, and nothing about epochs, files or signals:
// upload the batch -> forward and loss -> backward, whose grad-ready hooks start the bucketed
// gradient allreduce -> wait for the averaged gradients -> rank 0's BN buffers to every rank
// -> the NaN guard, agreed by all ranks -> the optimizer's update. Test-only behaviour runs
// through TestHooks before the upload and between forward and backward; the step itself has
// no test branch.
#pragma once

#include <memory>
#include <optional>

#include "comm/gradient_reducer.h"
#include "core/timer.h"
#include "data/sharded_loader.h"
#include "nn/model.h"
#include "optim/optimizer.h"
#include "train/device_batch.h"
#include "train/forward_backward.h"
#include "train/step_callback.h"
#include "train/step_guard.h"
#include "train/test_hooks.h"

namespace dp {

struct TrainStepOptions {
  float label_smoothing = 0.0f;
  // 0: mean loss; W (the number of ranks): the loss summed over the global batch
  // (--loss-reduction sum; see ForwardBackward).
  int sum_over_ranks = 0;
  bool cuda_graphs = false;  // replay full-size steps as captured graphs where the backend can
  int64_t local_batch = 0;   // this rank's full batch size
  // Copy rank 0's BN running statistics to every rank after each step's forward (DDP's
  // broadcast_buffers). Training itself never reads them (BN normalises with batch
  // statistics); evaluation and checkpoints do, so they see one model on every rank.
  bool broadcast_buffers = true;
  // The loader's augmentation when the backend runs it (--augment-on), else empty.
  std::optional<AugmentSpec> backend_augment;
};

struct StepResult {
  float loss = 0;  // this rank's batch mean (NaN or Inf possible on a skipped step)
  int64_t correct = 0, samples = 0;
  bool updated = false;  // false when the ranks agreed to skip the update
};

// Phase times a step adds to (see EpochTotals).
struct StepTimes {
  PhaseTimes& phases;
  double& comm_hidden;
};

class TrainStep {
 public:
  // Every reference must outlive the step. The model's grad-ready hook must feed `reducer`;
  // `model_comm` works in the model's memory (the gradient communicator).
  TrainStep(nn::Model& model, const TrainStepOptions& options, GradientReducer& reducer,
            Communicator& model_comm, StepGuard& guard, optim::Optimizer& optimizer,
            TestHooks& hooks);

  // `at` names the step in messages and hooks (its global step + 1 is the 1-based number).
  StepResult run(const data::HostBatch& batch, const StepPosition& at, StepTimes times);

 private:
  void broadcast_buffers();

  nn::Model& model_;
  GradientReducer& reducer_;
  Communicator& model_comm_;
  bool broadcast_buffers_;
  StepGuard& guard_;
  optim::Optimizer& optimizer_;
  TestHooks& hooks_;
  DeviceBatch device_batch_;
  // Forward, loss and backward: eager, or a replayed CUDA graph.
  ForwardBackward forward_backward_;
};

}  // namespace dp
