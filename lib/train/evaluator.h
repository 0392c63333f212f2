// Evaluation on a dataset split: each rank evaluates its own contiguous shard (no padding,
// so every sample counts exactly once), then the confusion matrix and loss are summed over
// ranks. BN uses running statistics (eval mode).
#pragma once

#include "comm/communicator.h"
#include "data/hdf5_dataset.h"
#include "io/metrics_writer.h"
#include "nn/model.h"

namespace dp {

struct EvalOptions {
  int64_t batch_size = 256;
  bool normalize = true;
  int prefetch = 2;
  bool augment_on_backend = false;  // normalise on the backend (see DeviceBatch)
};

EvaluationResult evaluate(nn::Model& model, const data::HDF5Dataset& dataset,
                          const EvalOptions& options, Communicator& comm);

}  // namespace dp
