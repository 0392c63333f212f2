#!/bin/sh
# Fuzzes the packers' parsers (IDX, CIFAR-10 binary batch, the JPEG/PNG decoding and resize of
# `pack --format folder`) with libFuzzer for a bounded time.
#   tests/reliability/fuzz.sh [SECONDS_PER_TARGET=60] [WORK_DIR=/tmp/dptrain-fuzz]
# Needs clang with libFuzzer (Debian: clang and libclang-rt-dev; tests/reliability/
# install_fuzz_tools.sh installs them). Builds each target with ASan and UBSan from the parser
# sources, starts from the kept corpus (tests/reliability/corpus/<target>/), and writes any
# crashing input into that corpus directory as crash-<sha1>: commit it, and the regular CTest
# test dp_reliability_parser_tests (test_parser_corpus.cpp) replays it on every build from then
# on. New interesting inputs go to WORK_DIR only, so the repository corpus stays small.
set -eu
seconds=${1:-60}
work=${2:-/tmp/dptrain-fuzz}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cxx=${CXX_FUZZ:-$(command -v clang++ || command -v clang++-14 || true)}
if [ -z "$cxx" ]; then
  echo "fuzz.sh: clang++ not found (run tests/reliability/install_fuzz_tools.sh)" >&2
  exit 2
fi
mkdir -p "$work"
flags="-std=c++20 -O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined
       -fno-sanitize-recover=undefined -I$root/lib -I$here"
status=0
for target in idx cifar10 image; do
  libs=""
  case $target in
    idx) sources="$root/lib/data/idx_source.cpp" ;;
    cifar10) sources="$root/lib/data/cifar10_source.cpp $root/lib/data/cifar_records.cpp" ;;
    image) sources="$root/lib/data/image_decode.cpp $root/lib/data/jpeg_decode.cpp $root/lib/data/image_resize.cpp"
           libs="-ljpeg -lpng16" ;;
  esac
  exe="$work/fuzz_$target"
  echo "== building $exe"
  # shellcheck disable=SC2086
  "$cxx" $flags "$here/fuzz_$target.cpp" $sources "$root/lib/data/sha256.cpp" -lfmt -lz -lcrypto \
    $libs -o "$exe"
  mkdir -p "$work/corpus_$target"
  echo "== fuzzing $target for $seconds s"
  # A CIFAR-10 batch is 30,730,000 bytes, far beyond libFuzzer's -max_len: that target checks
  # that no other size gets past the size checks; test_parser_corpus.cpp covers full batches.
  if ! "$exe" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
      -artifact_prefix="$here/corpus/$target/crash-" -print_final_stats=1 \
      "$work/corpus_$target" "$here/corpus/$target"; then
    echo "fuzz.sh: $target crashed; the input is in $here/corpus/$target/ (replayed by CTest)" >&2
    status=1
  fi
done
exit $status
