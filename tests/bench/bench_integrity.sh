#!/usr/bin/env bash
# The cost of end-to-end checksums (Fletcher-32 per chunk, README "Reliability"), with and
# without them in the same run, alternating ROUNDS times (the machine is shared and noisy):
#  - the loader (tests/data/bench_loader): a synthetic CIFAR-sized packed file (N 32x32x3
#    images) written with checksums (1 image row per chunk) or as dptrain packed it before
#    (256 rows per chunk, no checksums); read and augment images/s per core (thread CPU time)
#    and the headroom over what the fastest CPU model consumes per core (MODEL_PER_CORE,
#    default 477 images/s: tests/bench/results/2026-11-26-cpu-bench_vs_pytorch-blocked.txt);
#  - checkpoint save and load of ResNet-50-sized tensors (tests/io/bench_checkpoint).
#   tests/bench/bench_integrity.sh [BUILD_DIR] [ROUNDS] [N]
set -euo pipefail
BUILD=${1:-build}
ROUNDS=${2:-5}
N=${3:-50000}
MODEL_PER_CORE=${MODEL_PER_CORE:-477}
LOADER=$BUILD/tests/data/bench_loader
echo "# $(date -u +%FT%TZ) $(uname -n), load: $(cut -d' ' -f1-3 /proc/loadavg), $N images, $ROUNDS rounds"
printf '%-6s %-10s %12s %12s %14s %12s %10s\n' round file read/s augment/s pipeline/core loader/s headroom
for round in $(seq "$ROUNDS"); do
  for mode in none checksums; do
    out=$("$LOADER" --synthetic "$N" 128 1 4 "$mode")
    read_rate=$(echo "$out" | sed -n 's/^phases.*read \([0-9]*\) images.*/\1/p')
    aug_rate=$(echo "$out" | sed -n 's/^phases.*augment \([0-9]*\) images.*/\1/p')
    epoch_rate=$(echo "$out" | sed -n 's/.*epoch 0:.* s, \([0-9]*\) images\/s.*/\1/p')
    echo "$round $mode $read_rate $aug_rate $epoch_rate $MODEL_PER_CORE" | awk '{
      per_core = 1 / (1 / $3 + 1 / $4);
      printf "%-6s %-10s %12d %12d %14.0f %12d %9.0fx\n", $1, $2, $3, $4, per_core, $5, per_core / $6}'
  done
done | tee /tmp/bench_integrity.$$
median() { sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
ratios=$(awk '$2 == "none" {r[$1] = $3; p[$1] = $5}
              $2 == "checksums" && ($1 in r) {print $3 / r[$1], $5 / p[$1]}' /tmp/bench_integrity.$$)
printf '# checksums / none, median of %d rounds: read %.2fx, read+augment per core %.2fx\n' \
  "$ROUNDS" "$(echo "$ratios" | cut -d' ' -f1 | median)" "$(echo "$ratios" | cut -d' ' -f2 | median)"
rm -f /tmp/bench_integrity.$$
"$BUILD/tests/io/bench_checkpoint" "$ROUNDS" 2>&1 | grep -v '^note: '
