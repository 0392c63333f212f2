#!/usr/bin/env bash
# Sets everything up (jobs/setup.sh) and runs the whole test suite with CTest. GPU tests are
# skipped, visibly, where no GPU is present. Extra arguments go to ctest (e.g. -L data).
set -euo pipefail
cd "$(dirname "$0")/.."
jobs/setup.sh
# mpirun refuses root without these; CI runs as root.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
cd build
ctest --output-on-failure --timeout 900 "$@"
