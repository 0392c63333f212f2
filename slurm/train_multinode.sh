#!/usr/bin/env bash
# dptrain across nodes: 2 nodes x 4 GPUs, one rank per GPU (the baseline config; its global
# batch of 128 is split over the 8 ranks; give EXTRA_ARGS="--batch-size 512 --lr 0.4" to keep
# 64 per GPU). Change the node count with `sbatch --nodes=N`
# (keep --gpus-per-node equal to --ntasks-per-node).
#   sbatch slurm/train_multinode.sh
# Environment overrides: see slurm/dptrain_srun.sh. Preemption and requeue as train_1gpu.sh.
# GPUs per node, not per task: --gpus-per-task binds each task to one GPU, and where the site
# constrains devices per task (cgroups) NCCL cannot reach its peers over P2P/NVLink; every
# task sees the node's GPUs and dptrain takes GPU local_rank % device_count (slurm/README.md,
# "GPUs").
#SBATCH --job-name=dptrain-multinode
#SBATCH --nodes=2
#SBATCH --ntasks-per-node=4
#SBATCH --gpus-per-node=4
#SBATCH --cpus-per-task=4
#SBATCH --time=01:00:00
#SBATCH --signal=USR1@120
#SBATCH --requeue
#SBATCH --open-mode=append
#SBATCH --output=slurm-%x-%j.out
set -uo pipefail
source "${DPTRAIN_HOME:-${SLURM_SUBMIT_DIR:-$(dirname "$0")/..}}/slurm/dptrain_srun.sh" ||
  { echo "$0: slurm/dptrain_srun.sh not found: submit from the repository root, or set DPTRAIN_HOME" >&2; exit 2; }
dptrain_submit_if_outside_slurm "$0" "$@"
CONFIG=${CONFIG:-jobs/baseline_resnet50_cifar10_2gpu.cfg}
dptrain_require_ntasks "$0"
RUN_NAME=${RUN_NAME:-baseline-resnet50-cifar10-${SLURM_NTASKS}gpu}
dptrain_srun -- "$@"
