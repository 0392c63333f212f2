"""dptrain train under mpirun -np 2 on a tiny dataset: the run succeeds, rank 0 alone writes
metrics.h5 (with the data-parallel timing fields filled in and world-size 2), and
--comm nccl on the CPU backend is refused with a usage error naming the option."""
import os
import subprocess
import sys
import tempfile

import h5py
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tiny_dataset import mpirun_command, write_tiny_dataset  # noqa: E402

DPTRAIN, MPIEXEC = sys.argv[1], sys.argv[2]
failures = []


def check(ok, what):
    print(f"{'ok  ' if ok else 'FAIL'} {what}")
    if not ok:
        failures.append(what)


with tempfile.TemporaryDirectory() as tmp:
    data = os.path.join(tmp, "tiny.h5")
    write_tiny_dataset(data)
    out = os.path.join(tmp, "out")
    train = [DPTRAIN, "train", "--data", data, "--arch", "resnet8", "--epochs", "2",
             "--batch-size", "16", "--threads", "1", "--output-dir", out, "--run-name", "ddp",
             "--bucket-mb", "0.05", "--log-every", "5"]
    proc = subprocess.run(mpirun_command(MPIEXEC, 2, train), capture_output=True, text=True,
                          timeout=240)
    print(proc.stdout[-2000:], proc.stderr[-2000:])
    check(proc.returncode == 0, f"2-rank training exits 0 (got {proc.returncode})")
    check(proc.stdout.count("epoch 1/2 done") == 1, "only rank 0 prints progress")
    metrics = os.path.join(out, "ddp", "metrics.h5")
    check(os.path.exists(metrics), "rank 0 wrote metrics.h5")
    check(sorted(os.listdir(os.path.join(out, "ddp"))) == ["checkpoint.h5", "metrics.h5"],
          f"run directory holds one metrics and one checkpoint: {os.listdir(os.path.join(out, 'ddp'))}")
    if os.path.exists(metrics):
        with h5py.File(metrics) as f:
            h = f["history"]
            check(list(h["epoch"][:]) == [1, 2], "two epochs recorded")
            # 203 samples over 2 ranks: 102 each (padded), batch 8 per rank -> 13 steps.
            check(list(h["steps"][:]) == [13, 13], f"13 steps per epoch: {h['steps'][:]}")
            comm, hidden = h["time_comm"][:], h["time_comm_hidden"][:]
            check(np.all(comm > 0) and np.all(hidden >= 0) and np.all(hidden <= comm),
                  f"0 <= time_comm_hidden {hidden} <= time_comm {comm}")
            smax, smin = h["step_time_max"][:], h["step_time_min"][:]
            check(np.all(smin > 0) and np.all(smax >= smin), f"step times max {smax} >= min {smin}")
            attrs = f["config"].attrs
            check(attrs["world-size"] == "2", "config records world-size 2")
            check(attrs["comm"] == "auto" and attrs["bucket-mb"] == "0.05",
                  "config records --comm and --bucket-mb")
            check(attrs["gradient-comm"].startswith("mpi"), "gradients averaged over MPI")

    nccl = subprocess.run(mpirun_command(MPIEXEC, 2, train + ["--comm", "nccl", "--overwrite"]),
                          capture_output=True, text=True, timeout=120)
    check(nccl.returncode != 0 and "--comm" in nccl.stderr and "nccl" in nccl.stderr,
          f"--comm nccl refused on the CPU backend (exit {nccl.returncode}): "
          f"{nccl.stderr.strip().splitlines()[:1]}")

if failures:
    sys.exit(f"{len(failures)} check(s) failed")
