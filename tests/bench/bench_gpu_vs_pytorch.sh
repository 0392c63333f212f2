#!/usr/bin/env bash
# dptrain's CUDA backend vs PyTorch on the same GPU, side by side in one run: images/s of full
# training steps (forward, loss, backward, SGD update) for torchvision ResNet-50 at 32x32,
# batch 128 and 512, and ResNet-18, batch 128. dptrain in fp32 (strict), tf32 and bf16 mixed
# precision, each with CUDA graphs and cuDNN's persistent batch norm (its defaults), and bf16
# again with the plain batch-norm calls (DPTRAIN_CUDNN_BN=spatial: column dp_bf16_sbn); PyTorch
# in eager NCHW FP32, channels_last FP32, AMP bf16 (channels_last) and torch.compile where it
# works. The ratio columns are dptrain bf16 (default, then plain batch norm) over PyTorch eager
# AMP bf16 (the same arithmetic).
#
#   tests/bench/bench_gpu_vs_pytorch.sh [BUILD_DIR] [STEPS]
#
# PyTorch: the first of $TORCH_PYTHON, $DPTRAIN_PYTHON, /usr/bin/python3, python3 that imports
# a torch with CUDA; without one, the PyTorch columns say n/a (nothing is installed here).
# dp_TFLOP/s is dptrain's achieved rate from the FLOPs per step `dptrain bench` counts;
# GPU_PEAK_TFLOPS (dense, for the precision compared) turns it into a fraction of peak.
# Each measurement is killed after BENCH_CMD_TIMEOUT_S (150) seconds, or at BENCH_DEADLINE (a
# `date +%s` time, optional), after which the cells left read `cut`. TORCH_LD_LIBRARY_PATH,
# where set, is PyTorch's library path (tests/gpu/run_on_device.sh keeps its kit's off it).
# Exit status: the number of dptrain cells that failed (a cut one is not a failure).
set -uo pipefail
BUILD=${1:-build}
STEPS=${2:-30}
HERE=$(cd "$(dirname "$0")" && pwd)
DPTRAIN=${DPTRAIN:-$BUILD/app/dptrain}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1

# KEY's value on a `key=value ...` line: the key whole (images_per_sec is not
# median_images_per_sec, which `dptrain bench` prints after it).
field() { sed -n "s/^\(.* \)\{0,1\}$1=\([0-9.]*\).*/\2/p" | head -1; }

limit() {  # seconds a measurement may take now: 0 once the deadline has passed
  local left=${BENCH_CMD_TIMEOUT_S:-150}
  [ -n "${BENCH_DEADLINE:-}" ] && [ $((BENCH_DEADLINE - $(date +%s))) -lt "$left" ] &&
    left=$((BENCH_DEADLINE - $(date +%s)))
  echo $((left > 0 ? left : 0))
}
killed() { [ "$1" -eq 124 ] || [ "$1" -eq 137 ]; }  # RC: timeout's, or its -k's SIGKILL
by_deadline() { [ "$1" -lt "${BENCH_CMD_TIMEOUT_S:-150}" ]; }  # LIMIT: set by the deadline
TORCH_ENV=(env "LD_LIBRARY_PATH=${TORCH_LD_LIBRARY_PATH-${LD_LIBRARY_PATH:-}}")

TORCH=""
for py in ${TORCH_PYTHON:-} ${DPTRAIN_PYTHON:-} /usr/bin/python3 python3; do
  # Inside the deadline too: importing torch on a cold machine takes tens of seconds.
  t=$(limit)
  [ "$t" -gt 0 ] || break
  if command -v "$py" >/dev/null 2>&1 &&
     timeout -k 5 "$t" "${TORCH_ENV[@]}" "$py" -c \
       'import torch, torchvision, sys; sys.exit(0 if torch.cuda.is_available() else 1)' \
       >/dev/null 2>&1; then
    TORCH=$py
    break
  fi
done

gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)
echo "# $(date -u +%Y-%m-%dT%H:%MZ) GPU: ${gpu:-unknown}, steps=$STEPS"
t=$(limit)  # timeout 0 would mean none
echo "# PyTorch: ${TORCH:-none with CUDA found (or the deadline passed)} $( [ -n "$TORCH" ] &&
  [ "$t" -gt 0 ] && timeout -k 5 "$t" "${TORCH_ENV[@]}" "$TORCH" -c 'import torch; print(torch.__version__)')"

ours() {  # arch batch precision -> the `dptrain bench` line, or `cut` at the deadline
  local t rc  # (the environment passes through; the log goes to stderr: the caller's keeps it)
  t=$(limit)
  [ "$t" -gt 0 ] || { echo cut; return; }
  timeout -k 10 "$t" "$DPTRAIN" bench --device cuda --arch "$1" --batch-size "$2" \
    --precision "$3" --steps "$STEPS" --warmup 10
  rc=$?
  killed "$rc" && by_deadline "$t" && echo cut  # a hung one prints nothing: a failed cell
}
cell() {  # the `dptrain bench` line -> images/s, `cut` or `fail` (counted)
  local v
  [ "$1" = cut ] || [ "${1##*$'\n'}" = cut ] && { echo cut; return; }
  v=$(echo "$1" | field images_per_sec)
  [ -n "$v" ] && echo "$v" || echo fail
}
over() {  # A B -> "A/Bx", or n/a without a B
  echo "${1:-0} $2" | awk '{ if ($1 + 0 > 0 && $2 + 0 > 0) printf "%.2fx", $1 / $2; else print "n/a" }'
}
theirs() {  # arch batch mode
  [ -z "$TORCH" ] && { echo n/a; return; }
  # torch.compile takes about a minute per model; BENCH_TORCH_COMPILE=0 leaves it out.
  [ "$3" = compile ] && [ "${BENCH_TORCH_COMPILE:-1}" = 0 ] && { echo skipped; return; }
  local out rc t
  t=$(limit)
  [ "$t" -gt 0 ] || { echo cut; return; }
  out=$(timeout -k 10 "$t" "${TORCH_ENV[@]}" "$TORCH" "$HERE/pytorch_gpu_train_step.py" \
          --arch "$1" --batch-size "$2" --mode "$3" --steps "$STEPS" 2>/dev/null)
  rc=$?
  if killed "$rc"; then
    by_deadline "$t" && echo cut || echo timeout
    return
  fi
  out=$(echo "$out" | field images_per_sec)
  echo "${out:-n/a}"
}

printf '%-9s %5s %11s %11s %11s %11s %11s %11s %11s %11s %8s %9s %9s\n' arch batch \
  dp_fp32 dp_tf32 dp_bf16 dp_bf16_sbn pt_eager pt_cl pt_amp_bf16 pt_compile ratio ratio_sbn \
  dp_TFLOP/s
failed=0
for cfg in "resnet50 128" "resnet50 512" "resnet18 128"; do
  set -- $cfg
  arch=$1 batch=$2
  f32_line=$(ours "$arch" "$batch" fp32)
  t32_line=$(ours "$arch" "$batch" tf32)
  b16_line=$(ours "$arch" "$batch" bf16)
  sbn_line=$(DPTRAIN_CUDNN_BN=spatial ours "$arch" "$batch" bf16)
  f32=$(cell "$f32_line") t32=$(cell "$t32_line") b16=$(cell "$b16_line") sbn=$(cell "$sbn_line")
  failed=$((failed + $(echo "$f32 $t32 $b16 $sbn" | tr ' ' '\n' | grep -c '^fail$')))
  gflop_step=$(echo "$f32_line $t32_line $b16_line" | field gflop_per_step)
  eager=$(theirs "$arch" "$batch" eager)
  cl=$(theirs "$arch" "$batch" channels_last)
  amp=$(theirs "$arch" "$batch" amp_bf16)
  comp=$(theirs "$arch" "$batch" compile)
  best=$(echo "$f32 $t32 $b16 $sbn" |
         awk '{m = 0; for (i = 1; i <= NF; i++) if ($i + 0 > m) m = $i + 0; print m}')
  ratio=$(over "$b16" "$amp")
  ratio_sbn=$(over "$sbn" "$amp")
  tflops=$(echo "$best ${gflop_step:-0} $batch" | awk '{printf "%.1f", $1 * $2 / $3 / 1000}')
  printf '%-9s %5s %11s %11s %11s %11s %11s %11s %11s %11s %8s %9s %9s\n' "$arch" "$batch" \
    "$f32" "$t32" "$b16" "$sbn" "$eager" "$cl" "$amp" "$comp" \
    "$ratio" "$ratio_sbn" "$tflops"
  if [ -n "${GPU_PEAK_TFLOPS:-}" ]; then
    echo "#   $arch/$batch: $(echo "$tflops $GPU_PEAK_TFLOPS" | awk '{printf "%.1f%%", 100 * $1 / $2}') of ${GPU_PEAK_TFLOPS} TFLOP/s peak"
  fi
done
exit "$((failed < 100 ? failed : 100))"
