# shellcheck shell=bash
# Sourced by the sbatch scripts in slurm/ (not a job script itself). Finds the repository and
# the dptrain binary, turns environment variables into dptrain options, and starts the ranks
# with srun. Every run continues from its newest checkpoint (--resume auto), so a job requeued
# after SIGUSR1/SIGTERM (dptrain requeues it itself, see README "Slurm") picks up where it
# stopped; resubmitting a finished run only evaluates it again (set RUN_NAME for a new one).
#
# Environment (all optional):
#   DPTRAIN_HOME   repository root (default: the one this file is in; jobs are submitted from
#                  it, so a job script finds this file through $SLURM_SUBMIT_DIR)
#   DPTRAIN        the executable (default: $DPTRAIN_HOME/build/app/dptrain)
#   CONFIG         job config (default: set by each script)
#   DATA           packed dataset (overrides the config's `data`)
#   OUTPUT_DIR     where run directories go (default: $DPTRAIN_HOME/output)
#   RUN_NAME       run directory name (default: the config's `run-name`)
#   DEVICE         cuda | cpu | auto (default: cuda)
#   THREADS        compute threads per rank (default: the CPUs Slurm gives each task)
#   SRUN_MPI       srun's MPI plugin (default: pmix; `srun --mpi=list` shows the choices)
#   EXTRA_ARGS     more dptrain options, e.g. "--epochs 2 --checkpoint-every-minutes 30",
#                  split on whitespace (an option given here and by the wrapper is refused)
# A training script's own arguments are dptrain options too, kept word for word and given again
# to a requeued job (`sbatch slurm/train_2gpu.sh --run-name "lr 0.2" --lr 0.2`); one of them
# replaces the wrapper's own --config, --output-dir, --threads, --data or --run-name (set above
# from CONFIG, OUTPUT_DIR, ...). --device comes from DEVICE alone, and --resume is always auto.
# Used only when a script is run directly (not through sbatch), to submit itself:
#   PARTITION      sbatch --partition
#   CPUS_PER_TASK  sbatch --cpus-per-task
#   and DEVICE=cpu submits without GPUs (--gpus-per-node=0) for CPU-only partitions.

DPTRAIN_HOME=${DPTRAIN_HOME:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
DPTRAIN=${DPTRAIN:-$DPTRAIN_HOME/build/app/dptrain}
OUTPUT_DIR=${OUTPUT_DIR:-$DPTRAIN_HOME/output}
DEVICE=${DEVICE:-cuda}

# Run directly (`PARTITION=cpu DEVICE=cpu slurm/train_2gpu.sh`): submit this script with the
# sbatch options the environment asks for, then stop. #SBATCH lines cannot depend on the
# environment; options given to sbatch override them.
dptrain_submit_if_outside_slurm() {  # $1: the script's path, then its arguments
  [ -z "${SLURM_JOB_ID:-}" ] || return 0
  local options=()
  [ -n "${PARTITION:-}" ] && options+=(--partition="$PARTITION")
  [ -n "${CPUS_PER_TASK:-}" ] && options+=(--cpus-per-task="$CPUS_PER_TASK")
  [ "$DEVICE" = cpu ] && options+=(--gpus-per-node=0)
  local script
  script=$(realpath "$1")
  shift
  cd "$DPTRAIN_HOME" || { echo "dptrain_srun: DPTRAIN_HOME=$DPTRAIN_HOME is not a folder" >&2; return 2; }
  # ${a[@]+"${a[@]}"}: before bash 4.4, "${a[@]}" of an empty array fails under set -u.
  exec sbatch ${options[@]+"${options[@]}"} "$script" "$@"
}

# Stops the script ($1: its name) where the allocation has no task count, which an allocation
# made without --ntasks or --ntasks-per-node (`salloc -N2`) leaves unset.
dptrain_require_ntasks() {
  [ -n "${SLURM_NTASKS:-}" ] && return 0
  echo "$1: the allocation has no task count (SLURM_NTASKS): submit with sbatch, or give" \
       "salloc --ntasks or --ntasks-per-node" >&2
  exit 2
}

# Whether ARGS (after NAME) give the option NAME, as "NAME VALUE" or "NAME=VALUE".
dptrain_option_given() {
  local name=$1 arg
  shift
  for arg in "$@"; do
    if [ "$arg" = "$name" ] || [[ $arg == "$name="* ]]; then return 0; fi
  done
  return 1
}

# Starts dptrain on the job's tasks (or on the srun options given, e.g. --ntasks=4), with the
# dptrain options after `--` last (a job script passes its own arguments there).
# Returns dptrain's exit code: 7 means preempted, checkpointed and (under Slurm) requeued.
dptrain_srun() {
  local srun_extra=() script_args=()
  while [ $# -gt 0 ]; do
    if [ "$1" = -- ]; then
      shift
      script_args=("$@")
      break
    fi
    srun_extra+=("$1")
    shift
  done
  cd "$DPTRAIN_HOME" || { echo "dptrain_srun: DPTRAIN_HOME=$DPTRAIN_HOME is not a folder" >&2; return 2; }
  if [ ! -x "$DPTRAIN" ]; then
    echo "dptrain_srun: $DPTRAIN not found; build it first (jobs/setup.sh) or set DPTRAIN" >&2
    return 2
  fi
  # SLURM_GPUS_ON_NODE: the GPUs Slurm gave this node of the job (0 or unset: none; a
  # CUDA_VISIBLE_DEVICES inherited from the submitting shell says nothing about the job).
  if [ "$DEVICE" != cpu ] && [ "${SLURM_GPUS_ON_NODE:-0}" = 0 ]; then
    echo "dptrain_srun: DEVICE=$DEVICE but Slurm gave the job no GPUs on this node; on a CPU partition submit with DEVICE=cpu" >&2
  fi
  # --resume auto always (a requeued job given another would not continue), --device from
  # DEVICE (which the GPU check above and the self-submission read too); the other options this
  # wrapper gives are left out where the script's arguments give them: an argument wins over
  # the environment and the defaults (dptrain refuses an option given twice).
  local wrapper=(config "$CONFIG" output-dir "$OUTPUT_DIR"
                 threads "${THREADS:-${SLURM_CPUS_PER_TASK:-0}}")
  [ -n "${DATA:-}" ] && wrapper+=(data "$DATA")
  [ -n "${RUN_NAME:-}" ] && wrapper+=(run-name "$RUN_NAME")
  local args=(train --device "$DEVICE" --resume auto) i
  for ((i = 0; i < ${#wrapper[@]}; i += 2)); do
    dptrain_option_given "--${wrapper[i]}" ${script_args[@]+"${script_args[@]}"} ||
      args+=("--${wrapper[i]}" "${wrapper[i + 1]}")
  done
  local extra=()
  read -r -a extra <<<"${EXTRA_ARGS:-}"
  extra+=(${script_args[@]+"${script_args[@]}"})
  local shown=""  # the extra options as a shell would read them back
  [ ${#extra[@]} -gt 0 ] && shown=$(printf ' %q' "${extra[@]}")
  echo "dptrain_srun: job ${SLURM_JOB_ID:-?} (restart ${SLURM_RESTART_COUNT:-0}) on ${SLURM_JOB_NODELIST:-?}: $DPTRAIN ${args[*]}$shown"
  local srun_options=(--mpi="${SRUN_MPI:-pmix}" --kill-on-bad-exit=1)
  # Since Slurm 22.05 srun no longer inherits the job's --cpus-per-task.
  [ -n "${SLURM_CPUS_PER_TASK:-}" ] && srun_options+=(--cpus-per-task="$SLURM_CPUS_PER_TASK")
  local code=0
  # --kill-on-bad-exit: a rank that dies takes the step down at once (dptrain also aborts
  # the MPI job on errors); a preempted run's ranks all exit 7 together.
  srun "${srun_options[@]}" ${srun_extra[@]+"${srun_extra[@]}"} "$DPTRAIN" "${args[@]}" \
    ${extra[@]+"${extra[@]}"} || code=$?
  case $code in
    0) echo "dptrain_srun: finished" ;;
    7) echo "dptrain_srun: stopped by a signal; the checkpoint is written (the job requeued" \
            "unless it was cancelled, is an interactive allocation, --requeue false was" \
            "given, or scontrol failed: see above)" ;;
    *) echo "dptrain_srun: dptrain failed with exit code $code" >&2 ;;
  esac
  return $code
}
