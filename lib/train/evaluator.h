// Evaluation on a dataset split: each rank evaluates its own contiguous shard (no padding,
// so every sample counts exactly once), then the confusion matrix and loss are summed over
// ranks. BN uses running statistics (eval mode). With several views (test-time
// augmentation), each image is shown once per view and the loss and prediction come from the
// mean of the views' logits.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "comm/communicator.h"
#include "data/hdf5_dataset.h"
#include "io/evaluation_result.h"
#include "nn/model.h"
#include "train/augmentation.h"

namespace dp {

struct EvalOptions {
  int64_t batch_size = 256;
  bool normalize = true;
  // The statistics to normalise with (the run's training set's); empty: the dataset's own.
  std::vector<double> mean, std;
  int prefetch = 2;
  bool augment_on_backend = false;       // augment on the backend (see DeviceBatch)
  std::vector<EvalView> views = {EvalView{}};  // at least one; the identity by default
  std::function<void()> on_batch;              // if set, called after each batch (a heartbeat)
};

EvaluationResult evaluate(nn::Model& model, const data::HDF5Dataset& dataset,
                          const EvalOptions& options, Communicator& comm);

// As evaluate(), but abandoned when `abandon()` is true on any rank (a stop signal: the
// evaluation may not end before the job is killed): the ranks agree after every batch (one
// small allreduce), so all stop within a batch of it and every rank returns nullopt.
std::optional<EvaluationResult> evaluate_unless(nn::Model& model, const data::HDF5Dataset& dataset,
                                                const EvalOptions& options, Communicator& comm,
                                                const std::function<bool()>& abandon);

// Throws NumericalError naming `what` when the loss is not finite: the predictions of NaN
// logits mean nothing. The loss is the ranks' sum, so every rank throws alike.
void require_finite_loss(const EvaluationResult& result, const std::string& what);

}  // namespace dp
