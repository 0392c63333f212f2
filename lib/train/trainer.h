// The training loop of `dptrain train`: builds backend, data, model and optimizer from a
// TrainConfig, continues from a checkpoint when asked (--resume), runs the epochs with
// data-parallel gradient averaging over the communicator, evaluates, checkpoints as the
// CheckpointPolicy says, stops cleanly on SIGUSR1/SIGTERM, and has rank 0 write metrics.h5 and
// the checkpoints into the run directory.
#pragma once

#include "comm/communicator.h"
#include "train/config.h"

namespace dp {

class MpiSession;
class PreemptionSignal;

// Returns the process exit code: 0, or ExitCode::preempted after `signal` has fired and its
// checkpoint is written. Throws dp::Error otherwise.
int train(const TrainConfig& config, const MpiSession& mpi, const PreemptionSignal& signal);

}  // namespace dp
