#include "train/preempted_exit.h"

#include "core/error.h"
#include "core/log.h"
#include "train/slurm_requeue.h"

namespace dp {

int leave_preempted(const ResumePoint& point, const PreemptionSignal& signal, bool requeue,
                    Communicator& comm) {
  log::info("stopping on {} after the checkpoint at {} updates; exit code {} (resume with --resume auto)",
            PreemptionSignal::name(signal.received()), point.global_step,
            static_cast<int>(ExitCode::preempted));
  const std::string job = slurm_job_id();
  if (comm.rank() == 0 && requeue && !job.empty()) {
    const std::string failed = requeue_slurm_job(job);
    if (failed.empty())
      log::info("requeued Slurm job {}", job);
    else
      log::error("could not requeue Slurm job {}: {}", job, failed);
  }
  comm.barrier();
  return static_cast<int>(ExitCode::preempted);
}

}  // namespace dp
