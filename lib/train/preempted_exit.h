// Leaving a run stopped by SIGUSR1/SIGTERM, after its checkpoint: rank 0 requeues the Slurm
// job (unless --requeue false), then every rank leaves together, since with mpirun a rank
// that exits early with a non-zero code makes it kill the others.
#pragma once

#include "comm/communicator.h"
#include "train/preemption_signal.h"
#include "train/training_state.h"

namespace dp {

// Returns ExitCode::preempted.
int leave_preempted(const ResumePoint& point, const PreemptionSignal& signal, bool requeue,
                    Communicator& comm);

}  // namespace dp
