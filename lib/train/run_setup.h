// The pieces of a training run built from its TrainConfig, so train/trainer.cpp only wires
// them together: most a pure function of the options and what it needs; apply_whiten_init
// sets the model's whitening filters, and broadcast_state is a collective.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "comm/communicator.h"
#include "comm/gradient_reducer.h"
#include "data/hdf5_dataset.h"
#include "nn/model.h"
#include "optim/lr_schedule.h"
#include "optim/optimizer.h"
#include "train/checkpoint_policy.h"
#include "train/config.h"
#include "train/evaluator.h"
#include "train/param_groups.h"
#include "train/preempted_exit.h"
#include "train/run_directory.h"
#include "train/train_data.h"
#include "train/train_step.h"
#include "train/training_checkpoint.h"

namespace dp {

nn::ModelSpec model_spec(const TrainConfig& config, const data::HDF5Dataset& train_set);
// --whiten-init N: the first convolution whitens the first N training images (normalised
// with the training statistics under --normalize). Every rank computes the same weights.
void apply_whiten_init(const TrainConfig& config, nn::Model& model,
                       const data::HDF5Dataset& train_set);
// Rank 0's initial weights and BN buffers to every rank, over the communicator that works in
// the model's memory (MPI for host tensors; NCCL or host-staged MPI for device ones).
void broadcast_state(nn::Model& model, Communicator& comm);
// The bucketed reducer over the model's gradients (--bucket-mb), as DDP's.
std::unique_ptr<GradientReducer> make_gradient_reducer(nn::Model& model, Communicator& comm,
                                                       double bucket_mb);
// SGD over `groups` (taken first) and the default group, at --lr until the schedule sets it.
optim::Optimizer make_optimizer(const TrainConfig& config, nn::Model& model,
                                std::vector<ParamGroupRule> groups);
// `world`: the number of ranks (--sync-bn over several ranks turns CUDA graphs off: its
// exchanges wait on the host).
TrainStepOptions train_step_options(const TrainConfig& config, const TrainData& data, int world);
// --sync-bn exchanges statistics only with more than one rank (on one it is plain BatchNorm).
inline bool sync_bn_active(const TrainConfig& config, int world) {
  return config.sync_bn && world > 1;
}
// Each view's augmentation is built here against the test images, so one they cannot take
// (--tta 2's reflect shift of 1-pixel images) is refused before training, not after it.
EvalOptions eval_options(const TrainConfig& config, const TrainData& data,
                         const data::HDF5Dataset& test_set);
CheckpointPolicyOptions checkpoint_policy_options(const TrainConfig& config);
// `split` of the dataset file `path`, opened and validated on every rank (run_agreeing: a file
// every rank finds damaged is reported once). Collective.
data::HDF5Dataset open_split_on_every_rank(const std::string& path, const std::string& split);
RunIdentity run_identity(const TrainConfig& config, const data::HDF5Dataset& train_set,
                         int64_t steps_per_epoch);
// --run-name, or default_run_name's, named for the Slurm job where the run continues itself
// (--resume auto) in a job that a stop requeues (`requeue`), else for rank 0's time. A
// collective where defaulted.
std::string run_name(const TrainConfig& config, const data::HDF5Dataset& train_set,
                     const RequeuePlan& requeue);
RunDirectory::Existing existing_run_policy(const TrainConfig& config);
// The attributes metrics.h5 records for a resume: checkpoint, position, world, time, Slurm.
std::map<std::string, std::string> resume_record(const std::string& checkpoint,
                                                 const ResumePoint& point, int world);
// What metrics.h5 records as the job's options: the effective options, and beside them the run's
// name, the world size and the backend's and gradient communicator's descriptions.
std::map<std::string, std::string> recorded_options(const TrainConfig& config,
                                                    const std::string& run_name, int world,
                                                    const std::string& backend,
                                                    const std::string& gradient_comm);
// "--lr 0.1 -> 0.05, ..." for each option `now` gives another value than `previous` (the run's
// previous job's) holds, "" where none: a resumed run continues with this job's options, which
// a resubmitted job script may have changed. Left out: how each job starts (--resume,
// --overwrite), and what metrics.h5 records beside the options: the world size (the log's
// first line gives it) and the backend and gradient-comm descriptions (a requeued job on
// another node pins other cores).
std::string changed_options(const std::map<std::string, std::string>& previous,
                            const std::map<std::string, std::string>& now);
// Why metrics.h5 whose previous job recorded `previous` cannot be the history of a run with
// options `now`, "" where it can: another --arch, --seed, --batch-size or --normalize is another
// run (as a checkpoint of those is refused), whose rows the resumed run would join (an explicit
// --resume of one run's checkpoint into another run's directory).
std::string other_run_problem(const std::map<std::string, std::string>& previous,
                              const std::map<std::string, std::string>& now);

}  // namespace dp
