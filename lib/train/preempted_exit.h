// Leaving a run stopped by SIGUSR1/SIGTERM, after its checkpoint: rank 0 requeues the Slurm
// job (unless `requeue_refusal` says why not), then every rank leaves together, since with
// mpirun a rank that exits early with a non-zero code makes it kill the others.
#pragma once

#include <string>

#include "comm/communicator.h"
#include "train/config.h"
#include "train/preemption_signal.h"
#include "train/training_state.h"

namespace dp {

// Why a run stopped by a signal must not requeue its Slurm job ("" where it may): the requeued
// job runs the same command line again, which continues this run only with --resume auto
// (--resume none would refuse or, with --overwrite, restart the run; --resume PATH would start
// from that checkpoint again).
std::string requeue_refusal(const TrainConfig& config);

// Returns ExitCode::preempted. `requeue_refusal`: "" to requeue, else why not (logged).
int leave_preempted(const ResumePoint& point, const PreemptionSignal& signal,
                    const std::string& requeue_refusal, Communicator& comm);

}  // namespace dp
