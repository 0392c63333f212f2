// Under Slurm, a preempted run puts its own job back into the queue (`scontrol requeue
// $SLURM_JOB_ID`) once its checkpoint is safe; the requeued job starts the same batch script
// again, and `--resume auto` continues from that checkpoint.
#pragma once

#include <string>

namespace dp {

// The job id when this process runs inside a Slurm batch job, "" otherwise.
std::string slurm_job_id();

// Runs `scontrol requeue <job_id>` and waits for it. Returns "" on success, or why it failed
// (not found, non-zero exit...). Never throws: the checkpoint is already written, and the
// distinct exit code still tells the batch script what happened.
std::string requeue_slurm_job(const std::string& job_id);

}  // namespace dp
