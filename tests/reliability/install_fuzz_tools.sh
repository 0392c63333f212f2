#!/bin/sh
# Optional: the tools tests/reliability/fuzz.sh needs (clang with libFuzzer), for Debian 12.
# Not part of jobs/setup.sh: the regular build and tests do not need them.
set -eu
if command -v clang++ >/dev/null && ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a \
    >/dev/null 2>&1; then
  echo "clang and libFuzzer are installed"
  exit 0
fi
apt-get update
apt-get install -y --no-install-recommends clang libclang-rt-14-dev
