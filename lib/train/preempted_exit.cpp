#include "train/preempted_exit.h"

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

int leave_preempted(const ResumePoint& point, const PreemptionSignal& signal,
                    const std::string& requeue_refusal, Communicator& comm) {
  // The ranks stop together on a signal any of them received (mpirun forwards one to all;
  // a `kill` may reach one rank only).
  const int received = signal.received();
  log::info(
      "stopping on {} after the checkpoint at step {}; exit code {} (resume with --resume auto)",
      received != 0 ? PreemptionSignal::name(received) : "another rank's stop signal",
      point.global_step, static_cast<int>(ExitCode::preempted));
  const std::string job = slurm_job_id();
  if (comm.rank() == 0 && !job.empty()) {
    if (requeue_refusal.empty())
      requeue_unless_ended(job);
    else
      log::info("Slurm job {} not requeued: {}", job, requeue_refusal);
  }
  comm.barrier();
  return static_cast<int>(ExitCode::preempted);
}

}  // namespace dp
