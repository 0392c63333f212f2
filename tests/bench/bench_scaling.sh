#!/usr/bin/env bash
# Data-parallel scaling on this machine: images/s of `dptrain train` at 1 and 2 ranks (one
# core, one thread each; per-rank batch fixed, so the global batch grows with the ranks) for a
# small (resnet8) and a large (resnet50) ResNet, with the step split into compute and
# communication from metrics.h5; then the MPI allreduce bus bandwidth (nccl-tests definition).
# Timings come from the second epoch (the first pays one-off oneDNN primitive creation).
#   tests/bench/bench_scaling.sh [BUILD_DIR] [STEPS_PER_EPOCH] [BATCH_PER_RANK]
set -euo pipefail
BUILD=${1:-build}
STEPS=${2:-4}
BATCH=${3:-32}
PYTHON=${DPTRAIN_PYTHON:-/usr/bin/python3}
HERE=$(cd "$(dirname "$0")" && pwd)
DPTRAIN=$BUILD/app/dptrain
BENCH_ALLREDUCE=$BUILD/tests/comm/bench_allreduce
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1
MPIRUN=(mpirun --oversubscribe --allow-run-as-root --bind-to core -x OMP_NUM_THREADS=1)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

# CIFAR-shaped random data: 32x32x3, enough samples for the steps at 2 ranks.
"$PYTHON" -c "
import sys; sys.path.insert(0, '$HERE/../comm')
from tiny_dataset import write_tiny_dataset
write_tiny_dataset('$WORK/bench.h5', train=$((2 * BATCH * STEPS + 7)), test=16, side=32)
"

printf '%-9s %5s %6s %9s %9s %9s %9s %9s %12s %12s %10s\n' arch ranks batch img/s step_ms \
  fwd_ms bwd_ms comm_ms comm_hidden exposed_ms speedup
for arch in resnet8 resnet50; do
  base=""
  for ranks in 1 2; do
    run=$arch-np$ranks
    "${MPIRUN[@]}" -np "$ranks" "$DPTRAIN" train --data "$WORK/bench.h5" --arch "$arch" \
      --epochs 2 --max-steps-per-epoch "$STEPS" --batch-size $((BATCH * ranks)) --threads 1 \
      --eval-every 0 --checkpoint-every 0 --output-dir "$WORK/out" --run-name "$run" \
      --log-every 1000 > "$WORK/$run.log" 2>&1 || { cat "$WORK/$run.log"; exit 1; }
    line=$("$PYTHON" - "$WORK/out/$run/metrics.h5" "$ranks" "$((BATCH * ranks))" "$arch" "$base" <<'PY'
import sys
import h5py
path, ranks, batch, arch, base = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
with h5py.File(path) as f:
    h = {k: f["history"][k][-1] for k in f["history"]}
steps = h["steps"]
ms = lambda x: 1e3 * x / steps
step_ms = 1e3 * batch / h["images_per_sec"]
speedup = f"{h['images_per_sec'] / float(base):.2f}x" if base else "1.00x"
print(f"{arch:<9} {ranks:5d} {batch:6d} {h['images_per_sec']:9.1f} {step_ms:9.1f} "
      f"{ms(h['time_forward']):9.1f} {ms(h['time_backward']):9.1f} {ms(h['time_comm']):9.1f} "
      f"{ms(h['time_comm_hidden']):12.1f} {ms(h['time_comm'] - h['time_comm_hidden']):12.1f} "
      f"{speedup:>10}|{h['images_per_sec']}")
PY
)
    echo "${line%|*}"
    [ -z "$base" ] && base=${line#*|}
  done
done
echo "(per step, second epoch; comm = allreduce in flight or waited for, comm_hidden = the part"
echo " overlapped with backward, exposed = comm - hidden; bwd includes the hidden part)"
echo
"${MPIRUN[@]}" -np 2 "$BENCH_ALLREDUCE" --comm mpi --min-bytes 8 --max-bytes $((64 << 20)) \
  --iters 10 --warmup 3
