// Whether a run stopped by a signal requeues its Slurm job, from the job's fields as
// `scontrol show job` gives them (read on a local Slurm 22.05 for a cancelled job), and from
// the run's options (a requeued job runs the same command line again).
#include <gtest/gtest.h>

#include "train/preempted_exit.h"
#include "train/slurm_requeue.h"

namespace dp {
namespace {

std::map<std::string, std::string> job(const std::string& state, const std::string& run_time,
                                       const std::string& preempt_time = "None") {
  return {{"JobState", state}, {"RunTime", run_time}, {"TimeLimit", "00:30:00"},
          {"PreemptTime", preempt_time}};
}

TEST(SlurmRequeue, ACancelledJobStaysCancelledAndAPreemptedOrTimedOutOneComesBack) {
  // scancel: SIGTERM, the job COMPLETING well before its limit.
  EXPECT_NE(why_not_requeue(job("COMPLETING", "00:00:35")).find("cancelled"), std::string::npos);
  EXPECT_NE(why_not_requeue(job("CANCELLED", "00:00:35")), "");
  // The time limit, or a preemption: the same state, told apart by the times.
  EXPECT_EQ(why_not_requeue(job("COMPLETING", "00:30:00")), "");
  EXPECT_EQ(why_not_requeue(job("COMPLETING", "00:12:00", "2026-12-05T20:50:39")), "");
  EXPECT_EQ(why_not_requeue(job("TIMEOUT", "00:29:59")), "");
  // The early --signal warning: still running.
  EXPECT_EQ(why_not_requeue(job("RUNNING", "00:28:00")), "");
  // Requeued by someone else already (scontrol requeue sends SIGTERM too).
  EXPECT_NE(why_not_requeue(job("PENDING", "00:00:00")), "");
  EXPECT_NE(why_not_requeue(job("REQUEUED", "00:05:00")), "");
  // Unreadable (scontrol failed): a preempted job must come back, so it is requeued.
  EXPECT_EQ(why_not_requeue({}), "");
  // Days in the run time, and an unlimited job: only a preemption brings that one back.
  auto long_run = job("COMPLETING", "1-00:00:00");
  long_run["TimeLimit"] = "1-00:00:00";
  EXPECT_EQ(why_not_requeue(long_run), "");
  long_run["TimeLimit"] = "UNLIMITED";
  EXPECT_NE(why_not_requeue(long_run), "");
}

// Slurm requeues batch jobs only: an salloc allocation, or srun on its own, has BatchFlag=0
// (read on the local Slurm 22.05 for both, and BatchFlag=1 for an sbatch job's srun step).
TEST(SlurmRequeue, OnlyABatchJobCanBeRequeued) {
  EXPECT_TRUE(is_batch_job({{"JobState", "RUNNING"}, {"BatchFlag", "1"}}));
  EXPECT_FALSE(is_batch_job({{"JobState", "RUNNING"}, {"BatchFlag", "0"}}));
  // Unreadable: the requeue is tried (and its failure logged) rather than the job lost.
  EXPECT_TRUE(is_batch_job({}));
}

// Only --resume auto continues the run in the requeued job: none would refuse its run
// directory (or restart it with --overwrite), a file would start from that checkpoint again.
TEST(SlurmRequeue, OnlyARunThatContinuesItselfRequeuesItsJob) {
  TrainConfig config;
  config.resume.kind = ResumeRequest::Kind::automatic;
  EXPECT_EQ(requeue_refusal(config), "");
  config.requeue = false;
  EXPECT_EQ(requeue_refusal(config), "--requeue false");
  config.requeue = true;
  config.resume.kind = ResumeRequest::Kind::none;
  EXPECT_NE(requeue_refusal(config).find("without --resume auto"), std::string::npos);
  config.resume = {ResumeRequest::Kind::file, "runs/a/checkpoint.h5"};
  EXPECT_NE(requeue_refusal(config).find("--resume runs/a/checkpoint.h5"), std::string::npos);
}

}  // namespace
}  // namespace dp
