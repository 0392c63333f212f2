#!/usr/bin/env bash
# Every GPU check of the CUDA backend in one go, on a GPU machine that has the NVIDIA driver,
# the CUDA 13 libraries (cuBLAS, cuDNN 9, NCCL: the toolkit's or PyTorch's pip wheels), a
# python3 with h5py and numpy (PyTorch with CUDA for the benchmark's other columns and the
# airbench peer, Pillow for airbench's data) and compute-sanitizer, but none of Debian's
# packages: the rest comes from the kit that
# tests/gpu/make_device_kit.sh packed (.devkit/kit.tar.xz) and the dataset beside it that the
# part reads (.devkit/fashion-mnist: checks; .devkit/cifar: airbench), the two paths a device
# call carries. The kit must have been built from this tree's sources (SOURCE_DIGEST, checked
# first: exit 100 otherwise). From the repository root:
#
#   tests/gpu/run_on_device.sh OUT_DIR [checks|bench|profile|airbench|all] [BENCH_STEPS]
#
# `checks` (tests, end-to-end runs, memcheck; ~160 s on an H200) and `bench` (the benchmark
# against PyTorch, torch.compile included; ~5-9 min, kept inside BENCH_BUDGET_S, 540) fit one
# device call each. `all` (default) runs the checks, then the benchmark without torch.compile
# in what is left of ALL_BUDGET_S (240) seconds from its start, where BENCH_MIN_S (120) are
# left (else it says SKIP and leaves the time to the airbench call): a row or two.
# `airbench` (its own call) is issue 20's GPU bar as far as the JPEG copy of CIFAR-10 allows
# (~90.5-90.8% on either side there; 94.0% needs the original files): airbench94's whole
# recipe AIRBENCH_RUNS times (25) with dptrain in bf16, then AIRBENCH_PEER_RUNS times (as
# many) for each of the PyTorch peer's AIRBENCH_PEER_MODES ("eager-half compile-half"; a mode
# is eager|compile and half|bf16|fp32), on the CIFAR-10 copy the kit carries (.devkit/cifar,
# make_device_kit.sh);
# OUT_DIR gets airbench.txt (tests/bench/airbench_runs.py's table, rewritten after each
# source), airbench.log, peer_MODE.json and dptrain_runs.tar.gz (every dptrain run's metrics.h5);
# the part keeps inside AIRBENCH_BUDGET_S (540) seconds, about half of it for each side.
# A session's 15 minutes of device time (a machine's start included) hold both calls: `all`
# with timeout_s 270, then at once on the warm machine `AIRBENCH_BUDGET_S=B ... airbench` with
# B = min(lease.budget_left_s of the first call's reply - 90, 540) and timeout_s B + 40 (the
# call's limit shrinks to the time left, and a part killed there loses the files it has not
# written); the machine goes back after 30 idle seconds, so have the second call written first,
# and where the first reply's lease.warm is false take a fresh machine's start (~120 s) off B too.
# Before the first call, check here that the kit is this tree's (the device refuses it after a
# machine's start otherwise): `cmp <(bash tests/gpu/source_digest.sh) <(tar -xJOf
# .devkit/kit.tar.xz ./SOURCE_DIGEST)`; make_device_kit.sh prints each call's carry (64 MiB).
# `profile` writes kernels.csv: Nsight Compute's GPU time of every kernel of the first
# PROFILE_LAUNCHES (700) launches of a ResNet-50 bf16 batch-512 bench run, i.e. one whole step
# (heuristic algorithm choice and no graphs, so no autotuning launches come first);
# PROFILE_ARCH=airbench94 PROFILE_BATCH=1024 profiles airbench94's step instead (its whitening
# bias's gradient, channel_bias_backward, a chunked per-channel sum over 984,064 rows).
# OUT_DIR gets device.txt (GPU, driver, date), summary.txt (one line per check: PASS, FAIL or
# SKIP, seconds, exit code; a check past CHECK_TIMEOUT_S is killed and fails), checks.log
# (every check's whole output, written as it comes) and bench.txt (dptrain
# against PyTorch on this GPU, tests/bench/bench_gpu_vs_pytorch.sh). Exit status: the number
# of failed checks.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 100
OUT=${1:?usage: tests/gpu/run_on_device.sh OUT_DIR [checks|bench|profile|airbench|all] [BENCH_STEPS]}
PART=${2:-all}
BENCH_STEPS=${3:-30}
case $PART in checks | bench | profile | airbench | all) ;; *) echo "run_on_device: unknown part '$PART'" >&2; exit 100 ;; esac
mkdir -p "$OUT"
PART_START=$(date +%s)
KIT=/tmp/dptrain-kit
rm -rf "$KIT" && mkdir -p "$KIT" && tar -C "$KIT" -xJf .devkit/kit.tar.xz || exit 100
digest=$(bash tests/gpu/source_digest.sh) || { echo "run_on_device: source_digest.sh failed" >&2; exit 100; }
if [ "$digest" != "$(cat "$KIT/SOURCE_DIGEST" 2>/dev/null)" ]; then
  echo "run_on_device: .devkit/kit.tar.xz was built from other sources (commit" \
       "$(cat "$KIT/COMMIT" 2>/dev/null || echo unknown)) than this tree's; run" \
       "tests/gpu/make_device_kit.sh again" >&2
  exit 100
fi
BIN=$KIT/bin
case $PART in checks | all) data=fashion-mnist ;; airbench) data=cifar ;; *) data= ;; esac
if [ -n "$data" ] && [ ! -d ".devkit/$data" ]; then
  echo "run_on_device: part $PART reads .devkit/$data: carry it beside .devkit/kit.tar.xz" >&2
  exit 100
fi

# CUDA libraries after the kit's: any pip wheel's nvidia/*/lib and the toolkit's, in `ls`'s
# order. PyTorch (the peer, the benchmark's columns) runs on the machine's own library path:
# torch.compile's compilers and linkers must not load the kit's Debian libraries.
MACHINE_LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}
nvidia=$(python3 -c 'import nvidia; print(list(nvidia.__path__)[0])' 2>/dev/null)
cuda_libs=$(ls -d /usr/local/cuda/lib64 ${nvidia:+"$nvidia"/*/lib} 2>/dev/null | tr '\n' ':')
export LD_LIBRARY_PATH=$KIT/lib:$cuda_libs${LD_LIBRARY_PATH:-}
export PATH=$BIN:$PATH:/usr/local/cuda/bin  # compute-sanitizer lives with the toolkit
# OpenMPI runs from the kit instead of its build prefix: components, help files and orted
# from there; local launches only (no ssh), as root.
export OPAL_PKGLIBDIR=$KIT/openmpi/components OPAL_PKGDATADIR=$KIT/openmpi/share OPAL_BINDIR=$BIN
export PMIX_MCA_mca_base_component_path=$KIT/openmpi/pmix
export OMPI_MCA_plm=isolated OMPI_MCA_btl_vader_single_copy_mechanism=none
# On this machine a GPU test that finds no usable GPU fails instead of skipping.
export DPTRAIN_REQUIRE_GPU=on
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 PYTHONUNBUFFERED=1
export FASHION_MNIST_DIR=$PWD/.devkit/fashion-mnist
MPIRUN=$BIN/orterun

LOG=$OUT/checks.log SUMMARY=$OUT/summary.txt
[ "$PART" = airbench ] || : > "$LOG"  # airbench keeps its own log (8 files come back at most)
: > "$SUMMARY"
failed=0
# A check's time limit: the longest took 27 s on an H200; a hung one (a rank left waiting in a
# collective) is killed there, so the checks after it still run inside the device call.
CHECK_TIMEOUT_S=${CHECK_TIMEOUT_S:-90}
timed_out() { [ "$1" -eq 124 ] || [ "$1" -eq 137 ]; }  # RC: timeout's, or its -k's SIGKILL
check() {  # NAME COMMAND...: runs it with its output in the log as it comes, one verdict line
  local name=$1 start rc verdict output
  shift
  start=$(date +%s)
  output=$(mktemp)
  echo "=== $name: $*" >> "$LOG"  # before it runs: a call cut at its own limit shows where
  timeout -k 15 "$CHECK_TIMEOUT_S" "$@" 2>&1 | tee "$output" >> "$LOG"
  rc=${PIPESTATUS[0]}
  verdict=PASS
  # Skipped: exit 77 (a script, a CUDA test main, or an MPI test main whose ranks all skipped
  # and none failed), or exit 0 from a gtest program whose tests all skipped. Any other
  # non-zero exit is a failure, whatever the output says about skips; 124 and 137 are the
  # time limit's.
  if timed_out "$rc"; then
    verdict=FAIL
    echo "$name: killed after CHECK_TIMEOUT_S=$CHECK_TIMEOUT_S s" >> "$LOG"
    failed=$((failed + 1))
  elif [ "$rc" -eq 77 ]; then
    verdict=SKIP
  elif [ "$rc" -ne 0 ]; then
    verdict=FAIL
    failed=$((failed + 1))
  elif grep -q "\[  SKIPPED \]" "$output" && ! grep -q "\[       OK \]" "$output"; then
    verdict=SKIP
  fi
  echo "$verdict $name ($(($(date +%s) - start)) s, exit $rc)" | tee -a "$SUMMARY"
  rm -f "$output"
}

{
  date -u +%Y-%m-%dT%H:%MZ
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
  echo "kit: built at commit $(cat "$KIT/COMMIT"), sources as this tree's," \
       "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
  # torch.compile's Triton needs a C compiler at run time
  cc=$(command -v cc gcc | head -1)
  echo "kernel $(uname -r); C compiler: ${cc:-none}"
} > "$OUT/device.txt" 2>&1

# A short training run under compute-sanitizer memcheck (an array: `timeout` runs no shell
# function). API errors are not reported: NCCL's start-up probes kernels for other
# architectures and takes the refusals itself (error 209 from cudaFuncGetAttributes in
# ncclInitKernelsForDevice).
MEMCHECK_RUN=(compute-sanitizer --tool memcheck --report-api-errors no --error-exitcode 9
  "$BIN/dptrain" train --data /tmp/fm.h5 --arch resnet8 --epochs 1 --max-steps-per-epoch 12
  --batch-size 64 --device cuda --output-dir /tmp/memcheck --overwrite)

run_checks() {
  # The backend tests on the GPU, the cross-backend comparison (FP32, BF16 mixed precision,
  # the batch uploader), CUDA graph steps against eager ones, NCCL, 2 ranks sharing the GPU.
  check backend_tests_on_cuda "$BIN/test_cuda_backend"
  check cuda_vs_cpu_fp32_bf16_uploader "$BIN/test_cuda_vs_cpu"
  check cuda_graph_steps "$BIN/dp_train_cuda_tests"
  check nccl_np1 "$MPIRUN" -np 1 "$BIN/dp_comm_nccl_tests"
  check ddp_two_ranks_one_gpu "$MPIRUN" -np 2 "$BIN/dp_comm_equivalence_cuda_tests"
  check sync_bn_two_ranks_one_gpu "$MPIRUN" -np 2 "$BIN/dp_comm_sync_bn_cuda_tests"
  # Fashion-MNIST end to end on the GPU, FP32 and BF16, to the CPU run's accuracy bar.
  for precision in fp32 bf16; do
    check "e2e_fashion_mnist_cuda_$precision" python3 tests/e2e/test_fashion_mnist_train.py \
      "$BIN/dptrain" "$PWD" --device cuda --deterministic --precision "$precision"
  done
  # airbench94's recipe scaled to 30 steps on CUDA against the CPU backend's run.
  check airbench94_recipe_cuda_vs_cpu python3 tests/e2e/test_recipe_cuda_vs_cpu.py \
    "$BIN/dptrain" jobs/cifar10_94_fast.cfg
  # BF16 again with cuDNN's plain batch norm (DPTRAIN_CUDNN_BN=spatial; persistent is the default).
  export DPTRAIN_CUDNN_BN=spatial
  check e2e_fashion_mnist_cuda_bf16_spatial_bn python3 tests/e2e/test_fashion_mnist_train.py \
    "$BIN/dptrain" "$PWD" --device cuda --deterministic --precision bf16
  unset DPTRAIN_CUDNN_BN
  # compute-sanitizer memcheck on a short training run (graphs on, then BF16 without graphs).
  check pack_fashion_mnist "$BIN/dptrain" pack --format fashion-mnist --source "$FASHION_MNIST_DIR" \
    --output /tmp/fm.h5
  # A graph that fails to capture falls back to eager steps: fail unless the run says it captured.
  check memcheck_fp32_graphs bash -o pipefail -c \
    '"$@" 2>&1 | tee /dev/stderr | grep "CUDA graph captured"' memcheck \
    "${MEMCHECK_RUN[@]}" --run-name fp32 --cuda-graphs true
  check memcheck_bf16_eager "${MEMCHECK_RUN[@]}" --run-name bf16 --precision bf16 --cuda-graphs false
  export DPTRAIN_CUDNN_BN=spatial
  check memcheck_bf16_spatial_bn "${MEMCHECK_RUN[@]}" --run-name sbn --precision bf16
  unset DPTRAIN_CUDNN_BN
}

run_bench() {  # DEADLINE: the benchmark against PyTorch on this GPU, its cells cut there
  local rc
  DPTRAIN=$BIN/dptrain BENCH_DEADLINE=$1 TORCH_LD_LIBRARY_PATH=$MACHINE_LD_LIBRARY_PATH \
    tests/bench/bench_gpu_vs_pytorch.sh "$KIT" "$BENCH_STEPS" > "$OUT/bench.txt" 2>> "$LOG"
  rc=$?  # the number of dptrain cells that failed (a cut one is not a failure)
  [ "$rc" -eq 0 ] || failed=$((failed + 1))
  echo "$([ "$rc" -eq 0 ] && echo PASS || echo FAIL) bench (exit $rc: the dptrain cells that" \
    "failed; $(grep -o ' cut' "$OUT/bench.txt" | wc -l) cells cut at the deadline; bench.txt)" |
    tee -a "$SUMMARY"
}

run_profile() {  # per-kernel GPU time of one training step of PROFILE_ARCH at PROFILE_BATCH
  # --clock-control none: the GPU's clocks are left as they are (ncu locks them to base else)
  ncu --clock-control none --metrics gpu__time_duration.sum --csv --print-units base \
    --launch-count "${PROFILE_LAUNCHES:-700}" "$BIN/dptrain" bench --device cuda \
    --arch "${PROFILE_ARCH:-resnet50}" --batch-size "${PROFILE_BATCH:-512}" --precision bf16 \
    --deterministic --cuda-graphs false --warmup 1 --steps 1 \
    > "$OUT/kernels.csv" 2>> "$LOG"
  echo "profile: exit $? (kernels.csv)" | tee -a "$SUMMARY"
}

machine_python() { LD_LIBRARY_PATH=$MACHINE_LD_LIBRARY_PATH python3 "$@"; }

airbench_data() {  # the CIFAR-10 copy, decoded and packed as on a development machine
  machine_python -c 'import PIL' 2> /dev/null ||
    { echo "airbench: python3 has no Pillow, which make_cifar10_bin.py decodes with" >&2; return 1; }
  machine_python .devkit/cifar/make_cifar10_bin.py /tmp/cifar-bin &&
    "$BIN/dptrain" pack --source /tmp/cifar-bin --output "$1"
}

peer_flags() {  # MODE -> the peer's flags: eager|compile - half|bf16|fp32
  local how=${1%-*} precision=${1#*-}
  case $how in eager) ;; compile) echo --compile ;; *) return 1 ;; esac
  case $precision in half) echo --half ;; bf16) echo --autocast-bf16 ;; fp32) ;; *) return 1 ;; esac
}

airbench_fail() {
  echo "FAIL airbench: $* (airbench.log)" | tee -a "$SUMMARY"
  failed=$((failed + 1))
}

airbench_table() {  # DPTRAIN_DIR PEER_JSON...: airbench_runs.py's table into airbench.txt
  local dir=$1 table=/tmp/airbench.txt.new  # not in $OUT: a failed table must not come back
  shift
  local sources=()
  [ -n "$(ls "$dir" 2> /dev/null)" ] && sources+=(--dptrain "$dir")
  [ $# -gt 0 ] && sources+=(--peer "$@")
  [ ${#sources[@]} -gt 0 ] || return 0
  if machine_python tests/bench/airbench_runs.py "${sources[@]}" > "$table" \
    2>> "$OUT/airbench.log"; then
    mv "$table" "$OUT/airbench.txt"
  else
    airbench_fail "airbench_runs.py"
  fi
  # the runs' own records come back too, whatever the table made of them
  local records=("$dir"/*/metrics.h5)
  [ -e "${records[0]}" ] &&
    tar -C "$dir" -czf /tmp/dptrain_runs.tar.gz "${records[@]#"$dir"/}" 2>> "$OUT/airbench.log" &&
    mv /tmp/dptrain_runs.tar.gz "$OUT/"  # whole or not at all, if the call is cut
}

# The part keeps inside AIRBENCH_BUDGET_S (540) seconds from its start, so its files come back
# inside a 600 s device call: after the data, dptrain's runs start while AIRBENCH_DPTRAIN_SHARE
# (50) percent of what is left has not passed, then the peer's modes share the rest equally, so
# neither side's runs can crowd out the other's. Every run has a timeout at its side's deadline;
# one stopped there is reported CUT (not a failure: the budget's), and the peer rewrites its
# JSON after every run, so its finished runs stay. AIRBENCH_DEVICE (cuda) and AIRBENCH_EXTRA
# (flags for both sides) are for a dry run of this part on a CPU with bf16 arithmetic:
# AIRBENCH_DEVICE=cpu AIRBENCH_PEER_MODES=eager-bf16 AIRBENCH_EXTRA="--epochs 0.1".
# $OUT comes back with 8 files at most: 5 are this part's own, one more per peer mode.
airbench_cut() { echo "CUT airbench: $* at its deadline (airbench.log)" | tee -a "$SUMMARY"; }

airbench_dptrain_runs() {  # DATA DIR DEADLINE: dptrain's runs, seeds 0.., until the deadline
  local data=$1 dir=$2 deadline=$3 s left rc start failures_in_a_row=0
  for ((s = 0; s < ${AIRBENCH_RUNS:-25}; s++)); do
    start=$(date +%s)
    left=$((deadline - start))
    [ "$left" -gt 0 ] || { airbench_cut "dptrain, its share spent before seed $s"; break; }
    # shellcheck disable=SC2086  # AIRBENCH_EXTRA is a list of flags
    DPTRAIN_CUDNN_ALGORITHM_CACHE=$dir-cudnn-algorithms.txt \
      timeout -k 10 "$left" "$BIN/dptrain" train --config jobs/cifar10_94_fast.cfg --data "$data" \
      --seed "$s" --device "${AIRBENCH_DEVICE:-cuda}" --precision bf16 --checkpoint-every 0 \
      --output-dir "$dir" --run-name "s$s" ${AIRBENCH_EXTRA:-} >> "$OUT/airbench.log" 2>&1
    rc=$?
    echo "airbench: dptrain seed $s: exit $rc after $(($(date +%s) - start)) s of wall time" \
      >> "$OUT/airbench.log"
    [ "$rc" -eq 0 ] && { failures_in_a_row=0; continue; }
    mkdir -p "$dir-failed" && mv "$dir/s$s" "$dir-failed/" 2> /dev/null
    timed_out "$rc" && { airbench_cut "dptrain seed $s"; break; }
    airbench_fail "dptrain seed $s (exit $rc)"
    [ $((++failures_in_a_row)) -lt 3 ] || break
  done
  echo "airbench: dptrain finished $(ls "$dir" 2> /dev/null | wc -l) of ${AIRBENCH_RUNS:-25} runs" \
    >> "$OUT/airbench.log"
}

run_airbench() {  # issue 20 on this GPU: the whole recipe many times, dptrain's and the peer's
  local data=/tmp/cifar10.h5 dir=/tmp/airbench mode flags rc left peers=() modes
  local deadline=$(($(date +%s) + ${AIRBENCH_BUDGET_S:-540}))
  # eager first: the last mode takes all that is left, and compile's start-up needs it
  read -ra modes <<< "${AIRBENCH_PEER_MODES:-eager-half compile-half}"
  airbench_data "$data" > "$OUT/airbench.log" 2>&1 || { airbench_fail "no packed CIFAR-10"; return; }
  rm -rf "$dir" "$dir-failed" "$dir-cudnn-algorithms.txt"  # seed 0 searches, the rest reuse
  left=$((deadline - $(date +%s)))
  airbench_dptrain_runs "$data" "$dir" $(($(date +%s) + left * ${AIRBENCH_DPTRAIN_SHARE:-50} / 100))
  airbench_table "$dir"
  for i in "${!modes[@]}"; do
    mode=${modes[i]}
    flags=$(peer_flags "$mode") || { airbench_fail "peer mode '$mode'"; continue; }
    left=$(((deadline - $(date +%s)) / (${#modes[@]} - i)))  # this mode's equal share
    [ "$left" -gt 0 ] || { airbench_cut "peer $mode, not started"; continue; }
    # shellcheck disable=SC2086
    LD_LIBRARY_PATH=$MACHINE_LD_LIBRARY_PATH timeout -k 10 "$left" \
      python3 tests/bench/pytorch_airbench94.py --data "$data" \
      --device "${AIRBENCH_DEVICE:-cuda}" $flags --runs "${AIRBENCH_PEER_RUNS:-${AIRBENCH_RUNS:-25}}" \
      --json "$OUT/peer_$mode.json" ${AIRBENCH_EXTRA:-} >> "$OUT/airbench.log" 2>&1
    rc=$?
    if timed_out "$rc"; then
      airbench_cut "peer $mode"
    elif [ "$rc" -ne 0 ]; then
      airbench_fail "peer $mode (exit $rc)"
    fi
    [ -f "$OUT/peer_$mode.json" ] && peers+=("$OUT/peer_$mode.json")
    airbench_table "$dir" ${peers[@]+"${peers[@]}"}
  done
  echo "airbench: $(grep -c "runs, accuracy mean" "$OUT/airbench.txt" 2> /dev/null) sources" \
    "summed up (airbench.txt)" | tee -a "$SUMMARY"
}

case $PART in
  airbench) run_airbench ;;
  checks) run_checks ;;
  bench) run_bench $((PART_START + ${BENCH_BUDGET_S:-540})) ;;
  profile) run_profile ;;
  all)
    run_checks
    bench_deadline=$((PART_START + ${ALL_BUDGET_S:-240}))
    if [ $((bench_deadline - $(date +%s))) -ge "${BENCH_MIN_S:-120}" ]; then
      BENCH_TORCH_COMPILE=${BENCH_TORCH_COMPILE:-0} run_bench "$bench_deadline"
    else
      echo "SKIP bench ($((bench_deadline - $(date +%s))) s left of ALL_BUDGET_S, under" \
        "BENCH_MIN_S=${BENCH_MIN_S:-120}: for the airbench call)" | tee -a "$SUMMARY"
    fi ;;
esac
rm -f "$OUT"/*.tmp  # a JSON cut mid-write: its last whole version stays
exit "$failed"
