// TrainingRun: one `dptrain train` run, assembled from its options. Its construction and epoch
// loop are in trainer.cpp, how it starts (fresh, or resumed: the checkpoint the ranks agree on,
// metrics.h5 opened or reopened, the abandoned branch set aside) in training_run_start.cpp.
// Internal to dp_train: train() (train/trainer.h) is the interface.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "comm/collective_watchdog.h"
#include "comm/comm_choice.h"
#include "comm/gradient_reducer.h"
#include "data/hdf5_dataset.h"
#include "io/metrics_writer.h"
#include "nn/model.h"
#include "train/backend_choice.h"
#include "train/checkpoint_files.h"
#include "train/comm_stats_exchange.h"
#include "train/epoch_driver.h"
#include "train/run_setup.h"
#include "train/training_checkpoint.h"
#include "train/trainer.h"

namespace dp {

// One training run. The constructor builds everything (every rank validates the data before
// step 1, so a bad file stops all of them); run() resumes if asked and trains to the end or to
// a stop signal.
class TrainingRun {
 public:
  TrainingRun(const TrainConfig& config, const PreemptionSignal& signal, const MpiSession& mpi,
              CollectiveWatchdog& watchdog, RecipeAdditions additions);
  int run();

 private:
  // Loads the checkpoint --resume names, if any, and opens metrics.h5 accordingly.
  ResumePoint start_or_resume(EpochTotals& resumed_totals);
  // The checkpoint --resume finds ("" for none) and its own position in the run.
  struct FoundCheckpoint {
    std::string path;
    CheckpointPosition position;
    std::vector<std::string> skipped;  // --resume auto's corrupted checkpoints (this rank's)
  };
  FoundCheckpoint agreed_resume_checkpoint();
  void start_branch_at(const FoundCheckpoint& resumed) const;
  bool resumes_automatically() const {
    return config_.resume.kind == ResumeRequest::Kind::automatic;
  }
  void open_metrics(const std::string& resumed_from, const ResumePoint& point);
  // A resumed run's metrics.h5 continued: refused where it records another run; the options
  // changed since its previous job logged.
  void reopen_metrics(const std::string& resumed_from, const ResumePoint& point,
                      const std::map<std::string, std::string>& effective);
  void start_driver(const ResumePoint& start);
  int finish(const ResumePoint& start);
  void log_start() const;
  std::string sync_bn_note() const;

  const TrainConfig& config_;
  const PreemptionSignal& signal_;
  std::unique_ptr<Communicator> comm_;
  bool writer_;  // rank 0 writes the run's files
  data::HDF5Dataset train_set_, test_set_;
  BackendChoice choice_;
  std::unique_ptr<nn::Model> model_;
  CommStatsExchange stats_exchange_;  // --sync-bn's, over comm_
  CommChoice grad_comm_;
  std::unique_ptr<GradientReducer> reducer_;
  TrainData data_;
  EvalOptions eval_options_;  // made before the run directory: a view the data cannot take stops
                              // the run before anything is written
  optim::Optimizer optimizer_;
  StepCallbacks callbacks_;
  StepGuard guard_;
  std::unique_ptr<TestHooks> hooks_;
  TrainStep step_;
  TrainingCheckpointer checkpointer_;
  RequeuePlan requeue_plan_;  // what a stop signal does to the Slurm job
  std::string run_name_;
  RunDirectory run_dir_;
  // --overwrite's replaced run, until the first step is done (rank 0 only); destroyed after
  // metrics_, so a failed start's metrics.h5 is closed when the replaced one comes back.
  std::unique_ptr<ReplacedRun> replaced_;
  std::unique_ptr<MetricsWriter> metrics_;  // rank 0 only
  std::unique_ptr<RunCheckpoints> checkpoints_;
  std::unique_ptr<EpochDriver> driver_;
};

}  // namespace dp
