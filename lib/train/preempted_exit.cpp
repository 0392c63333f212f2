#include "train/preempted_exit.h"

#include "comm/mpi_strings.h"
#include "core/error.h"
#include "core/log.h"
#include "train/slurm_requeue.h"

namespace dp {
namespace {

// Puts the job back into the queue, unless it ended otherwise (why_not_requeue).
void requeue_unless_ended(const std::string& job) {
  if (const std::string why = why_not_requeue(slurm_job_fields(job)); !why.empty()) {
    log::info("Slurm job {} not requeued: {}", job, why);
    return;
  }
  const std::string failed = requeue_slurm_job(job);
  if (failed.empty())
    log::info("requeued Slurm job {}", job);
  else
    log::error("could not requeue Slurm job {}: {}", job, failed);
}

}  // namespace

std::string requeue_refusal(const TrainConfig& config) {
  if (!config.requeue) return "--requeue false";
  switch (config.resume.kind) {
    case ResumeRequest::Kind::automatic:
      return "";
    case ResumeRequest::Kind::file:
      return fmt::format(
          "the run was started with --resume {}, from which a requeued job would start again "
          "(give --resume auto to continue a run)",
          config.resume.file);
    case ResumeRequest::Kind::none:
      break;
  }
  return "the run was started without --resume auto, so a requeued job would not continue it";
}

RequeuePlan plan_requeue(const TrainConfig& config, const Communicator& comm) {
  std::vector<std::string> mine = {slurm_job_id(), requeue_refusal(config)};
  if (comm.rank() == 0 && !mine[0].empty() && mine[1].empty() &&
      !is_batch_job(slurm_job_fields(mine[0])))
    mine[1] =
        "it is an interactive allocation (salloc, or srun outside sbatch), which Slurm "
        "cannot requeue";
  const std::vector<std::string> agreed = broadcast_strings(mine);
  return {agreed[0], agreed[1]};
}

int leave_preempted(const ResumePoint& point, const PreemptionSignal& signal,
                    const RequeuePlan& plan, Communicator& comm) {
  // The ranks stop together on a signal any of them received (mpirun forwards one to all;
  // a `kill` may reach one rank only).
  const int received = signal.received();
  log::info(
      "stopping on {} after the checkpoint at step {}; exit code {} (resume with --resume auto)",
      received != 0 ? PreemptionSignal::name(received) : "another rank's stop signal",
      point.global_step, static_cast<int>(ExitCode::preempted));
  if (comm.rank() == 0 && !plan.job.empty()) {
    if (plan.refusal.empty())
      requeue_unless_ended(plan.job);
    else
      log::info("Slurm job {} not requeued: {}", plan.job, plan.refusal);
  }
  comm.barrier();
  return static_cast<int>(ExitCode::preempted);
}

}  // namespace dp
