"""Every rank fails together: under mpirun -np 2, one rank throwing an error or SIGKILLing
itself mid-epoch (dptrain's --fail-at-step/--fail-rank/--fail-mode test options) must end the
whole job with a non-zero exit — never a rank left waiting in an allreduce (a job still
running after LIMIT seconds is killed and counts as hung)."""
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tiny_dataset import mpirun_command, write_tiny_dataset  # noqa: E402

DPTRAIN, MPIEXEC = sys.argv[1], sys.argv[2]
LIMIT = 90
failures = []

with tempfile.TemporaryDirectory() as tmp:
    data = os.path.join(tmp, "tiny.h5")
    write_tiny_dataset(data)
    # The killed rank says so before it raises SIGKILL: the job reached step 5 and the kill
    # is what ended it.
    cases = [("error", 1, "injected failure at step 5"), ("error", 0, "injected failure"),
             ("kill", 1, "injected failure: SIGKILL at step 5"),
             ("kill", 0, "injected failure: SIGKILL at step 5")]
    for mode, rank, message in cases:
        train = [DPTRAIN, "train", "--data", data, "--arch", "resnet8", "--epochs", "3",
                 "--batch-size", "16", "--threads", "1", "--output-dir",
                 os.path.join(tmp, "out"), "--run-name", f"{mode}{rank}", "--fail-at-step", "5",
                 "--fail-rank", str(rank), "--fail-mode", mode]
        start = time.monotonic()
        try:
            proc = subprocess.run(mpirun_command(MPIEXEC, 2, train), capture_output=True,
                                  text=True, timeout=LIMIT)
            code, err = proc.returncode, proc.stderr
        except subprocess.TimeoutExpired as e:
            code, err = None, (e.stderr or b"").decode(errors="replace")
        took = time.monotonic() - start
        ok = code not in (None, 0)  # None: still running at LIMIT, killed as hung
        ok = ok and f"rank {rank}: error: {message}" in err
        print(f"{'ok  ' if ok else 'FAIL'} rank {rank} fails by {mode}: exit {code} after "
              f"{took:.1f} s")
        if not ok:
            print(err[-3000:])
            failures.append((mode, rank))

if failures:
    sys.exit(f"failed cases: {failures}")
