"""mpi_test_main.h's exit code under mpirun -np 2, on skip_verdict_probe: skipped (77) only
when every rank skipped and none failed; a rank that skips while another runs or fails is a
failure (1), whichever rank mpirun hears from first."""
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tiny_dataset import mpirun_command  # noqa: E402

PROBE, MPIEXEC = sys.argv[1], sys.argv[2]
SKIP = 77
# (ranks that skip, rank that fails, expected exit code)
CASES = [("none", None, 0), ("all", None, SKIP), ("1", None, 1), ("0", "1", 1),
         ("none", "1", 1)]
failures = 0
for skip, fail, expected in CASES:
    env = dict(os.environ, DP_PROBE_SKIP=skip)
    env.pop("DP_PROBE_FAIL", None)
    if fail is not None:
        env["DP_PROBE_FAIL"] = fail
    proc = subprocess.run(mpirun_command(MPIEXEC, 2, [PROBE]), capture_output=True, text=True,
                          env=env, timeout=120)
    ok = proc.returncode == expected
    failures += not ok
    print(f"{'ok  ' if ok else 'FAIL'} skip on {skip}, fail on {fail}: exit {proc.returncode} "
          f"(expected {expected})")
    if not ok:
        print(proc.stdout[-2000:], proc.stderr[-2000:])
sys.exit(1 if failures else 0)
