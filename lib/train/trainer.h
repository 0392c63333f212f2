// The training loop of `dptrain train`: builds backend, data, model and optimizer from a
// TrainConfig, runs the epochs with data-parallel gradient averaging over the communicator,
// evaluates, and has rank 0 write metrics.h5 and checkpoint.h5 into the run directory.
#pragma once

#include "comm/communicator.h"
#include "train/config.h"

namespace dp {

class MpiSession;

// Returns the process exit code (0) or throws dp::Error.
int train(const TrainConfig& config, const MpiSession& mpi);

}  // namespace dp
