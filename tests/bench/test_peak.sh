#!/bin/bash
# `dptrain bench --peak` in f32 and bf16: a positive GFLOP/s from the named oneDNN kernel, and
# bf16 refused with one line where the CPU has no bf16 arithmetic (then the bf16 half skips).
# usage: test_peak.sh DPTRAIN
set -u
dptrain=$1
gflops() { sed -n 's/.*peak gflops=\([0-9.]*\) .*/\1/p' <<<"$1"; }

out=$("$dptrain" bench --peak --threads 2 2>&1) || { echo "f32 peak failed: $out"; exit 1; }
g=$(gflops "$out")
awk -v g="$g" 'BEGIN { exit !(g > 0) }' || { echo "f32 peak gave no GFLOP/s: $out"; exit 1; }
grep -q " dtype=f32 kernel=" <<<"$out" || { echo "f32 peak does not say f32: $out"; exit 1; }
echo "f32: $out"

# Refused as a usage error (exit 2) with one line: a crash (134, 139) is not a refusal.
out=$("$dptrain" bench --peak --precision tf32 2>&1)
rc=$?
[ "$rc" -eq 2 ] && [ "$(wc -l <<<"$out")" -eq 1 ] && grep -q "precision is fp32 or bf16" <<<"$out" ||
  { echo "--peak --precision tf32 was not refused with one line and exit 2 (exit $rc): $out"; exit 1; }
out=$("$dptrain" bench --peak --precision bf16 --threads 2 2>&1)
rc=$?
if [ "$rc" -eq 0 ]; then
  g=$(gflops "$out")
  awk -v g="$g" 'BEGIN { exit !(g > 0) }' || { echo "bf16 peak gave no GFLOP/s: $out"; exit 1; }
  grep -q " dtype=bf16 kernel=.*\(amx\|bf16\)" <<<"$out" ||
    { echo "bf16 peak did not run a bf16 kernel: $out"; exit 1; }
  echo "bf16: $out"
else
  [ "$rc" -eq 2 ] && [ "$(wc -l <<<"$out")" -eq 1 ] &&
    grep -q "this CPU has no bf16 arithmetic" <<<"$out" ||
    { echo "bf16 peak failed (exit $rc): $out"; exit 1; }
  echo "bf16 skipped: $out"
  exit 77
fi
