#!/usr/bin/env bash
# dptrain on 2 GPUs of one node: the baseline's data-parallel twin (batch 128 = 2 x 64).
#   sbatch slurm/train_2gpu.sh                       (from the repository root, on a GPU partition)
#   PARTITION=cpu DEVICE=cpu slurm/train_2gpu.sh     (submits itself; CPU-only partition)
#   sbatch slurm/train_2gpu.sh --epochs 2 --run-name "short run"   (arguments: more dptrain options)
# Environment overrides (CONFIG, DATA, OUTPUT_DIR, RUN_NAME, DEVICE, EXTRA_ARGS...): see
# slurm/dptrain_srun.sh. Slurm sends SIGUSR1 120 s before the time limit; dptrain then
# checkpoints, requeues the job and exits 7, and the requeued job resumes (--resume auto).
# GPUs per node, not per task: --gpus-per-task binds each task to one GPU, and where the site
# constrains devices per task (cgroups) NCCL cannot reach its peers over P2P/NVLink; every
# task sees the node's GPUs and dptrain takes GPU local_rank % device_count (slurm/README.md,
# "GPUs").
#SBATCH --job-name=dptrain-train_2gpu
#SBATCH --nodes=1
#SBATCH --ntasks-per-node=2
#SBATCH --gpus-per-node=2
#SBATCH --cpus-per-task=4
#SBATCH --time=01:30:00
#SBATCH --signal=USR1@120
#SBATCH --requeue
#SBATCH --open-mode=append
#SBATCH --output=slurm-%x-%j.out
set -uo pipefail
source "${DPTRAIN_HOME:-${SLURM_SUBMIT_DIR:-$(dirname "$0")/..}}/slurm/dptrain_srun.sh" ||
  { echo "$0: slurm/dptrain_srun.sh not found: submit from the repository root, or set DPTRAIN_HOME" >&2; exit 2; }
dptrain_submit_if_outside_slurm "$0" "$@"
CONFIG=${CONFIG:-jobs/baseline_resnet50_cifar10_2gpu.cfg}
dptrain_srun -- "$@"
