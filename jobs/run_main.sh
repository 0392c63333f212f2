#!/usr/bin/env bash
# Sets everything up (jobs/setup.sh) and runs the main job: the brief's baseline, ResNet-50 on
# CIFAR-10 (jobs/baseline_resnet50_cifar10.cfg), on the GPU where one is usable and on the CPU
# otherwise. CIFAR-10 cannot be downloaded by this script: put the official binary version's
# folder at data/cifar-10-batches-bin (README "Data"). Without it, the job says so and runs the
# Fashion-MNIST CPU demo instead (jobs/fashion_mnist_cpu_demo.cfg), which needs no download
# (data/cifar10.h5 packed already counts as CIFAR-10 there). Run again, it continues the run
# from its last checkpoint (--resume auto: a stopped or killed run goes on, a finished one is
# evaluated again); give --overwrite (or --resume none with another --run-name) to start over.
# Extra arguments are passed to `dptrain train` (e.g. --epochs 1). RANKS (default 1): the
# number of ranks mpirun starts.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -f jobs/setup.sh ]; then  # sbatch runs a copy of this script from its spool folder
  echo "run_main: run it from the repository (jobs/run_main.sh); under Slurm submit slurm/train_*.sh" >&2
  exit 2
fi
jobs/setup.sh
dptrain=build/app/dptrain
ranks=${RANKS:-1}
# --bind-to none: dptrain pins its threads to each rank's share of the node itself; mpirun's
# default for one or two ranks is one core per rank.
mpirun_args=(--oversubscribe --bind-to none -np "$ranks")
[ "$(id -u)" -eq 0 ] && mpirun_args+=(--allow-run-as-root)

if [ -f data/cifar10.h5 ] || [ -f data/cifar-10-batches-bin/data_batch_1.bin ]; then
  [ -f data/cifar10.h5 ] || "$dptrain" pack --format cifar10 --source data/cifar-10-batches-bin --output data/cifar10.h5
  config=jobs/baseline_resnet50_cifar10.cfg
else
  echo "run_main: data/cifar-10-batches-bin not found (see README, Data); running the Fashion-MNIST CPU demo instead"
  [ -f data/fashion-mnist.h5 ] || "$dptrain" pack --format fashion-mnist --source /usr/share/datasets/fashion-mnist --output data/fashion-mnist.h5
  config=jobs/fashion_mnist_cpu_demo.cfg
fi
# --resume auto unless the arguments say how to start (options may be given once only).
start=(--resume auto)
for arg in "$@"; do
  case "$arg" in --resume | --resume=* | --overwrite | --overwrite=*) start=() ;; esac
done
exec mpirun "${mpirun_args[@]}" "$dptrain" train --config "$config" "${start[@]}" "$@"
