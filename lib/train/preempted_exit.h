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

// What a stop signal does to the run's Slurm job, settled when the run starts and rank 0's on
// every rank: the job ("" outside Slurm) and why it is not requeued ("" where it is).
struct RequeuePlan {
  std::string job;
  std::string refusal;
  // Inside a Slurm job that will not come back: nothing continues the run after a stop.
  bool job_ends_for_good() const { return !job.empty() && !refusal.empty(); }
  bool requeues() const { return !job.empty() && refusal.empty(); }
};

// Collective. Adds to `requeue_refusal(config)` what only Slurm knows: an interactive
// allocation (salloc, srun on its own) cannot be requeued, so rank 0 asks scontrol once.
RequeuePlan plan_requeue(const TrainConfig& config, const Communicator& comm);

// Returns ExitCode::preempted. Rank 0 requeues `plan.job` unless `plan.refusal` (logged) or
// the job ended otherwise (a user's scancel).
int leave_preempted(const ResumePoint& point, const PreemptionSignal& signal,
                    const RequeuePlan& plan, Communicator& comm);

}  // namespace dp
