#!/usr/bin/env bash
# Sets everything up (jobs/setup.sh) and runs the whole test suite with CTest. GPU tests are
# skipped, visibly, where no GPU is present. Extra arguments go to ctest (e.g. -L data).
# The last lines list every test CTest did not run (skipped, or not built), so a new skip is
# seen; a skip does not fail the run, a failure does (ctest's exit code is kept).
set -euo pipefail
cd "$(dirname "$0")/.."
jobs/setup.sh
# mpirun refuses root without these; CI runs as root.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
cd build
log=$(mktemp)
trap 'rm -f "$log"' EXIT
rc=0
ctest --output-on-failure --timeout 900 "$@" 2>&1 | tee "$log" || rc=$?
# CTest's own block: "The following tests did not run:" then one indented line per test.
not_run=$(awk '/^The following tests did not run:/ {on = 1; next} on && /^[ \t]/ {print; next}
               {on = 0}' "$log")
echo
if [ -n "$not_run" ]; then
  echo "Tests that did not run ($(echo "$not_run" | wc -l)):"
  echo "$not_run"
else
  echo "Tests that did not run: none"
fi
exit "$rc"
