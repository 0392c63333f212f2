#!/usr/bin/env bash
# dptrain vs PyTorch, side by side in one run on this machine: images/s of full training steps
# (forward, loss, backward, SGD update) for torchvision ResNet-50 at 32x32, CIFAR-stem
# ResNet-18 and ResNet-20, batch 128, same thread count; PyTorch in both NCHW and
# channels_last. Prints a table with the ratio dptrain / best PyTorch layout.
#   tests/bench/bench_vs_pytorch.sh [BUILD_DIR] [STEPS] [THREADS]
set -euo pipefail
BUILD=${1:-build}
STEPS=${2:-10}
THREADS=${3:-$(nproc)}
PYTHON=${DPTRAIN_PYTHON:-/usr/bin/python3}
HERE=$(cd "$(dirname "$0")" && pwd)
DPTRAIN=$BUILD/app/dptrain
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1

field() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p"; }

echo "# $(date -u +%Y-%m-%dT%H:%MZ) $(lscpu | sed -n 's/^Model name: *//p'), $THREADS threads, steps=$STEPS"
printf '%-16s %6s %14s %14s %14s %8s\n' arch batch dptrain_img/s torch_nchw torch_cl ratio
for arch in resnet50 resnet18_cifar resnet20; do
  ours=$("$DPTRAIN" bench --device cpu --arch "$arch" --batch-size 128 --steps "$STEPS" \
         --threads "$THREADS" | field images_per_sec)
  nchw=$("$PYTHON" "$HERE/pytorch_train_step.py" --arch "$arch" --steps "$STEPS" \
         --threads "$THREADS" | field images_per_sec)
  cl=$("$PYTHON" "$HERE/pytorch_train_step.py" --arch "$arch" --steps "$STEPS" \
       --threads "$THREADS" --channels-last | field images_per_sec)
  best=$(echo "$nchw $cl" | awk '{print ($1 > $2) ? $1 : $2}')
  ratio=$(echo "$ours $best" | awk '{printf "%.2f", $1 / $2}')
  printf '%-16s %6s %14s %14s %14s %8s\n' "$arch" 128 "$ours" "$nchw" "$cl" "${ratio}x"
done
