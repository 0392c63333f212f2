// Under Slurm, a preempted run puts its own job back into the queue (`scontrol requeue
// $SLURM_JOB_ID`) once its checkpoint is safe; the requeued job starts the same batch script
// again, and `--resume auto` continues from that checkpoint.
#pragma once

#include <map>
#include <string>

namespace dp {

// The job id when this process runs inside a Slurm batch job, "" otherwise.
std::string slurm_job_id();

// The job's fields as `scontrol show job` reports them (JobState=RUNNING, RunTime=00:01:02,
// TimeLimit, PreemptTime...), empty where they cannot be read.
std::map<std::string, std::string> slurm_job_fields(const std::string& job_id);

// Whether the job runs an sbatch script, the only kind Slurm requeues (BatchFlag=1); an
// interactive allocation (salloc, or srun on its own) has BatchFlag=0. True where the field is
// missing (scontrol unreadable): then the requeue is tried, and its failure logged.
bool is_batch_job(const std::map<std::string, std::string>& job);

// Why a job whose run stopped on a signal must not be requeued ("" where it must): a user's
// `scancel` sends SIGTERM as the time limit and preemption do, and `scontrol requeue` would
// bring back even a cancelled job. Its state then reads COMPLETING in every case, so what
// tells them apart is its run time against its limit, and its preemption time (which Slurm
// sets at every preemption since 20.11; before, only with a GraceTime). A job still running
// (the early --signal warning) or unreadable is requeued; one already pending is not.
std::string why_not_requeue(const std::map<std::string, std::string>& job);

// Runs `scontrol requeue <job_id>` and waits for it. Returns "" on success, or why it failed
// (not found, non-zero exit...). Never throws: the checkpoint is already written, and the
// distinct exit code still tells the batch script what happened.
std::string requeue_slurm_job(const std::string& job_id);

}  // namespace dp
