"""`eval` with a stalled rank: rank 1 is held by gdb where it opens the dataset (as by a hung file
system), after the ranks' first agreement; rank 0 opens its data and waits for rank 1's verdict.
--collective-timeout 3 must end the job with exit 5 and the option named, never hang. gdb is
this test's tool, not dptrain's requirement: without it the test skips (exit 77)."""
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from reliability_util import EXIT, Checker, mpirun_command, write_tiny_dataset

SKIPPED = 77
gdb = shutil.which("gdb")
if gdb is None:
    print("SKIPPED: no gdb on this machine (jobs/setup.sh installs it)")
    sys.exit(SKIPPED)

check = Checker(sys.argv[1], sys.argv[2])
with tempfile.TemporaryDirectory() as tmp:
    data = os.path.join(tmp, "tiny.h5")
    write_tiny_dataset(data, train=96, test=16)
    out = os.path.join(tmp, "out")
    code, err, _, _ = check.run(["train", "--data", data, "--arch", "resnet8", "--epochs", "1",
                                 "--batch-size", "16", "--threads", "1",
                                 "--max-steps-per-epoch", "6", "--output-dir", out,
                                 "--run-name", "for-eval"])
    check.record(code == 0, "a checkpoint to evaluate", f"exit {code} {err.strip()[-300:]}")
    args = ["eval", "--checkpoint", os.path.join(out, "for-eval", "checkpoint.h5"), "--data",
            data, "--threads", "1", "--collective-timeout", "3", "--output",
            os.path.join(tmp, "stalled-eval.h5")]
    held = [gdb, "-q", "-batch", "-ex", "break dp::data::HDF5Dataset::HDF5Dataset", "-ex", "run",
            "-ex", "shell sleep 120", "-ex", "continue", "--args", check.dptrain] + args
    command = mpirun_command(check.mpiexec, 1, [check.dptrain] + args) + [":", "-np", "1"] + held
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    start = time.monotonic()
    try:
        _, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        _, err = proc.communicate()
    took = time.monotonic() - start
    lines = [line for line in err.splitlines() if line.startswith("dptrain:")]
    check.record(proc.returncode == EXIT["communication"] and
                 any("option --collective-timeout: no progress" in line for line in lines),
                 "eval: a rank stalled opening its data, --collective-timeout 3",
                 f"exit {proc.returncode} in {took:.1f} s {lines or err.strip()[-300:]}")
check.finish()
