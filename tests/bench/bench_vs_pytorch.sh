#!/usr/bin/env bash
# dptrain vs PyTorch, side by side in one run on this machine: images/s of full training steps
# (forward, loss, backward, SGD update) for torchvision ResNet-50 at 32x32, CIFAR-stem
# ResNet-18 and ResNet-20, batch 128, same thread count; PyTorch in both NCHW and
# channels_last. dptrain runs with direct convolution everywhere (DPTRAIN_CPU_CONV=direct) and
# with its default, Winograd for the 3x3 stride-1 layers of 16 channels (our own kernel) and of
# 64+ channels, 32+ where activations are blocked (DPTRAIN_CPU_CONV=winograd); both lower
# small-map convolutions to GEMM and keep the activation layout the network gets by default
# (DPTRAIN_CPU_LAYOUT unset). Prints, per model: images/s, the ratio dptrain / best PyTorch
# layout, and the GFLOP/s achieved (convolution + linear multiply-adds, forward + backward = 3x
# forward, counted as direct convolution even where Winograd ran) against the machine's peak
# from `dptrain bench --peak` (a large oneDNN matmul). Then the data pipeline's images/s per
# core (tests/data/bench_loader, CPU time of read + augment) next to what the fastest model
# consumes per core.
#   tests/bench/bench_vs_pytorch.sh [BUILD_DIR] [STEPS] [THREADS] [ROUNDS]
# DPTRAIN_BENCH_ARCHS="resnet20" runs a subset of the models.
# Each figure is a median step (dptrain bench and pytorch_train_step.py both print one), so a
# stall of the shared machine during one step does not move it. The four runs of a model
# alternate ROUNDS times (default 3); the table shows the median over rounds of each column, the
# ratios are the medians of each round's ratio, and `worst` is the lowest round's default ratio.
# The machine is shared: look at the load printed on the first line; numbers are only worth
# keeping when it is well below 1.
set -euo pipefail
shopt -s inherit_errexit  # a failing run inside $(...) ends the script, not its column
BUILD=${1:-build}
STEPS=${2:-10}
THREADS=${3:-$(nproc)}
ROUNDS=${4:-3}
for arg in STEPS THREADS ROUNDS; do  # both sides take the same thread count: no 0 = "all"
  [[ ${!arg} =~ ^[1-9][0-9]*$ ]] || { echo "bench_vs_pytorch.sh: $arg must be a positive" \
    "integer, not '${!arg}'" >&2; exit 2; }
done
BATCH=128  # the benchmark batch of the issue, for both sides
PYTHON=${DPTRAIN_PYTHON:-/usr/bin/python3}
HERE=$(cd "$(dirname "$0")" && pwd)
DPTRAIN=$BUILD/app/dptrain
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1

field() { sed -n "s/.*[ ]$1=\([0-9.]*\).*/\1/p"; }
ours() {  # ours ARCH CONV -> the bench line
  DPTRAIN_CPU_CONV=$2 "$DPTRAIN" bench --device cpu --arch "$1" --batch-size "$BATCH" \
    --steps "$STEPS" --threads "$THREADS"
}

echo "# $(date -u +%Y-%m-%dT%H:%MZ) $(lscpu | sed -n 's/^Model name: *//p'), $THREADS threads," \
     "steps=$STEPS, load $(cut -d' ' -f1-3 /proc/loadavg)"
peak=$("$DPTRAIN" bench --peak --threads "$THREADS" | field gflops)
echo "# peak (oneDNN 2048^3 f32 matmul, $THREADS threads): $peak GFLOP/s"
printf '%-15s %9s %9s %10s %10s %7s %7s %7s %9s %9s\n' arch direct winograd torch_nchw torch_cl \
  ratio ratio_w worst GFLOP/s %peak
median() { tr ' ' '\n' | grep . | sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
ALLOCATORS=$(mktemp)
trap 'rm -f "$ALLOCATORS"' EXIT
torch() {  # torch ARCH [--channels-last] -> median images/s; notes the allocator it ran on
  local line
  line=$("$PYTHON" "$HERE/pytorch_train_step.py" --arch "$1" --batch-size "$BATCH" \
    --steps "$STEPS" --threads "$THREADS" ${2:-})
  echo "$line" | sed -n 's/.* allocator=\([^ ]*\).*/\1/p' >> "$ALLOCATORS"
  echo "$line" | field median_images_per_sec
}
best_ours=0
for arch in ${DPTRAIN_BENCH_ARCHS:-resnet50 resnet18_cifar resnet20}; do
  directs="" winos="" nchws="" cls="" ratios="" ratios_w=""
  for _ in $(seq "$ROUNDS"); do
    line=$(ours "$arch" direct)
    direct=$(echo "$line" | field median_images_per_sec)
    gflop_per_step=$(echo "$line" | field gflop_per_step)
    wino=$(ours "$arch" winograd | field median_images_per_sec)
    nchw=$(torch "$arch")
    cl=$(torch "$arch" --channels-last)
    read -r ratio ratio_w < <(echo "$direct $wino $nchw $cl" | awk '{
      best = ($3 > $4) ? $3 : $4; printf "%.2f %.2f\n", $1 / best, $2 / best}')
    directs+=" $direct" winos+=" $wino" nchws+=" $nchw" cls+=" $cl"
    ratios+=" $ratio" ratios_w+=" $ratio_w"
  done
  direct=$(echo "$directs" | median) wino=$(echo "$winos" | median)
  read -r gflops pct < <(echo "$direct $wino $gflop_per_step $peak $BATCH" | awk '{
    top = ($2 > $1) ? $2 : $1; g = $3 * top / $5; printf "%.1f %.0f\n", g, 100 * g / $4}')
  printf '%-15s %9s %9s %10s %10s %6sx %6sx %6sx %9s %8s%%\n' "$arch" "$direct" "$wino" \
    "$(echo "$nchws" | median)" "$(echo "$cls" | median)" "$(echo "$ratios" | median)" \
    "$(echo "$ratios_w" | median)" "$(echo "$ratios_w" | tr ' ' '\n' | grep . | sort -g | head -1)" \
    "$gflops" "$pct"
  best_ours=$(echo "$best_ours $direct $wino" | awk '{m=$1; if ($2>m) m=$2; if ($3>m) m=$3; print m}')
done
echo "# GFLOP/s and %peak: of the faster dptrain variant, direct-convolution FLOPs"
echo "# PyTorch's allocator (tests/bench/peer_allocator.py): $(sort -u "$ALLOCATORS" | paste -sd, -)"

LOADER=$BUILD/tests/data/bench_loader
if [[ -x $LOADER ]]; then
  phases=$("$LOADER" --synthetic 8192 128 1 4 | grep '^phases')
  read_rate=$(echo "$phases" | sed -n 's/.*read \([0-9]*\) images.*/\1/p')
  aug_rate=$(echo "$phases" | sed -n 's/.*augment \([0-9]*\) images.*/\1/p')
  echo "$read_rate $aug_rate $best_ours $THREADS" | awk '{
    per_core = 1 / (1 / $1 + 1 / $2); model = $3 / $4;
    printf "# data pipeline (read + crop/flip/normalise, 32x32x3, CPU time): %.0f images/s per core;" \
           " fastest model consumes %.0f images/s per core: %.0fx headroom\n", per_core, model,
           per_core / model}'
else
  echo "# $LOADER not built: no data-pipeline figure"
fi
