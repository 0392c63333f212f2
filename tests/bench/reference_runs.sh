#!/usr/bin/env bash
# Behaviour-preserving changes (refactors) are checked by running the same short trainings with
# the binary before and after and comparing every output with compare_runs.py:
#   tests/bench/reference_runs.sh OLD/app/dptrain DIR/before
#   tests/bench/reference_runs.sh NEW/app/dptrain DIR/after
#   /usr/bin/python3 tests/bench/compare_runs.py DIR/before DIR/after
# The runs (Fashion-MNIST from Debian's package, packed into DIR/../fashion-mnist.h5 once):
# the CPU demo for 2 epochs; 2 ranks with Nesterov, no decay on BN/bias, label smoothing,
# cosine with warm-up, step checkpoints kept as named files; NaN injected on two steps.
set -euo pipefail
dptrain=$(realpath "$1"); out=$(realpath -m "$2")
repo=$(cd "$(dirname "$0")/../.." && pwd)
data=$(dirname "$out")/fashion-mnist.h5
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
mkdir -p "$out"
[ -f "$data" ] || "$dptrain" pack --format fashion-mnist --source /usr/share/datasets/fashion-mnist --output "$data"
common=(--data "$data" --output-dir "$out" --overwrite)
"$dptrain" train --config "$repo/jobs/fashion_mnist_cpu_demo.cfg" "${common[@]}" --epochs 2 \
  --run-name demo2 > "$out/demo2.log" 2>&1
mpirun --oversubscribe --bind-to none -np 2 "$dptrain" train "${common[@]}" --arch resnet8 \
  --epochs 2 --max-steps-per-epoch 60 --batch-size 64 --nesterov true --no-decay-bn-bias true \
  --label-smoothing 0.1 --lr-schedule cosine --warmup-epochs 0.5 --checkpoint-every-steps 25 \
  --keep-checkpoints 2 --run-name mpi2 > "$out/mpi2.log" 2>&1
"$dptrain" train "${common[@]}" --arch resnet8 --epochs 1 --max-steps-per-epoch 20 --batch-size 32 \
  --inject-nan-at-step 3 --inject-nan-steps 2 --run-name nan > "$out/nan.log" 2>&1
echo "reference runs written to $out"
