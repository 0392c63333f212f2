#!/usr/bin/env bash
# Data-parallel scaling sweep: inside one allocation of 8 GPUs, the same short training on 1,
# 2, 4 and 8 of them, one after the other, each into its own run directory
# (output/scaling-<JOBID>-<N>gpu/metrics.h5; compare /history/images_per_sec). Weak scaling: each GPU
# keeps PER_GPU_BATCH samples per step (global batch = N x PER_GPU_BATCH).
#   sbatch slurm/scaling_sweep.sh
#   SWEEP="1 2" PER_GPU_BATCH=32 DEVICE=cpu sbatch --partition=cpu --ntasks-per-node=2 \
#     --cpus-per-task=2 --gpus-per-node=0 slurm/scaling_sweep.sh   (a CPU sweep: the #SBATCH
#     lines below ask for 8 tasks of 4 CPUs, which sbatch's options replace)
# Environment: SWEEP (default "1 2 4 8"; sizes above the allocation are skipped),
# PER_GPU_BATCH (128), RUN_PREFIX (scaling-<JOBID>: a requeued job continues its sweep, a new
# one measures anew), SWEEP_ARGS (default: two epochs of 48 steps,
# evaluated once at the end: the same steps on every size, since at 8 x 128 an epoch of
# CIFAR-10's 50,000 images has 49; `dptrain-report --skip-epochs 1` leaves out the first
# epoch's start-up; with more GPUs or a larger batch, lower --max-steps-per-epoch to
# ceil(train images / global batch) of the largest size), plus those of slurm/dptrain_srun.sh.
# On nodes of 4 GPUs:
#   sbatch --nodes=2 --ntasks-per-node=4 --gpus-per-node=4 slurm/scaling_sweep.sh
# GPUs per node, not per task: --gpus-per-task binds each task to one GPU, and where the site
# constrains devices per task (cgroups) NCCL cannot reach its peers over P2P/NVLink; every
# task sees the node's GPUs and dptrain takes GPU local_rank % device_count (slurm/README.md,
# "GPUs").
#SBATCH --job-name=dptrain-scaling
#SBATCH --nodes=1
#SBATCH --ntasks-per-node=8
#SBATCH --gpus-per-node=8
#SBATCH --cpus-per-task=4
#SBATCH --time=01:00:00
#SBATCH --signal=USR1@120
#SBATCH --requeue
#SBATCH --open-mode=append
#SBATCH --output=slurm-%x-%j.out
set -uo pipefail
source "${DPTRAIN_HOME:-${SLURM_SUBMIT_DIR:-$(dirname "$0")/..}}/slurm/dptrain_srun.sh" ||
  { echo "$0: slurm/dptrain_srun.sh not found: submit from the repository root, or set DPTRAIN_HOME" >&2; exit 2; }
[ $# -eq 0 ] || { echo "scaling_sweep: takes no arguments; give dptrain options in SWEEP_ARGS or EXTRA_ARGS" >&2; exit 2; }
dptrain_submit_if_outside_slurm "$0"
CONFIG=${CONFIG:-jobs/baseline_resnet50_cifar10.cfg}
base_extra=${EXTRA_ARGS:-}
dptrain_require_ntasks "$0"
for n in ${SWEEP:-1 2 4 8}; do
  if [ "$n" -gt "$SLURM_NTASKS" ]; then
    echo "scaling_sweep: skipping $n ranks (the allocation has $SLURM_NTASKS tasks)"
    continue
  fi
  # Named for the job, which its requeued job keeps: a new sweep measures anew.
  RUN_NAME=${RUN_PREFIX:-scaling-$SLURM_JOB_ID}-${n}gpu
  EXTRA_ARGS="--batch-size $((n * ${PER_GPU_BATCH:-128})) ${SWEEP_ARGS:---epochs 2 --max-steps-per-epoch 48 --eval-every 0} $base_extra"
  # --exact: the step takes only its own tasks' CPUs, as a separate job would. --nodes: as
  # few nodes as hold n tasks (srun inside an allocation otherwise spreads a step over all of
  # them: 2 ranks on 2 nodes would measure the network, not one node).
  per_node=$((SLURM_NTASKS / ${SLURM_NNODES:-1}))
  dptrain_srun --ntasks="$n" --nodes=$(((n + per_node - 1) / per_node)) --exact
  code=$?
  # Preempted (7): the job is requeued and the sweep resumes there; stop now.
  [ "$code" -eq 0 ] || exit "$code"
done
