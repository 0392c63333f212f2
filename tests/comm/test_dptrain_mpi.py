"""dptrain train under mpirun -np 2 on a tiny dataset: the run succeeds, rank 0 alone writes
metrics.h5 (with the data-parallel timing fields filled in and world-size 2), its final
validation confusion matrix equals `dptrain eval` of its checkpoint on 1 rank (one model on
every rank: rank 0's BN buffers are broadcast, as DDP's broadcast_buffers), every rank holds
the same BN buffers after each step (and with --broadcast-buffers false they drift apart), and
--comm nccl on the CPU backend is refused with a usage error naming the option; `bench --peak`
on 2 ranks measures with each rank's share of the cores."""
import os
import re
import subprocess
import sys
import tempfile

import h5py
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checks import check, finish  # noqa: E402
from tiny_dataset import mpirun_command, text_attrs, write_tiny_dataset  # noqa: E402

DPTRAIN, MPIEXEC = sys.argv[1], sys.argv[2]

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
    check(sorted(os.listdir(os.path.join(out, "ddp"))) ==
          [".dptrain.lock", "checkpoint.h5", "metrics.h5"],
          "run directory holds one metrics file, one checkpoint and the run's lock: "
          f"{os.listdir(os.path.join(out, 'ddp'))}")
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
            attrs = text_attrs(f["config"])
            check(attrs["world-size"] == "2", "config records world-size 2")
            check(attrs["comm"] == "auto" and attrs["bucket-mb"] == "0.05",
                  "config records --comm and --bucket-mb")
            check(attrs["gradient-comm"].startswith("mpi"), "gradients averaged over MPI")

    # eval of the checkpoint on 1 rank and on 2 (the test split sharded): the same confusion
    # matrix as the run's final evaluation, and the file records how many ranks computed it.
    for ranks in (1, 2):
        evaluated = os.path.join(tmp, f"eval-np{ranks}.h5")
        evaluate = [DPTRAIN, "eval", "--checkpoint", os.path.join(out, "ddp", "checkpoint.h5"),
                    "--data", data, "--threads", "1", "--output", evaluated]
        ev = subprocess.run(mpirun_command(MPIEXEC, ranks, evaluate), capture_output=True,
                            text=True, timeout=120)
        check(ev.returncode == 0,
              f"dptrain eval of the 2-rank checkpoint on {ranks} rank(s) exits 0: {ev.stderr[-500:]}")
        if ev.returncode == 0 and os.path.exists(metrics):
            with h5py.File(metrics) as f, h5py.File(evaluated) as e:
                final, again = f["final/confusion_matrix"][()], e["eval/confusion_matrix"][()]
                check(final.sum() > 0 and np.array_equal(final, again),
                      f"the run's final confusion matrix equals eval of its checkpoint on "
                      f"{ranks} rank(s):\n{final}\n{again}")
                check(int(e.attrs.get("world_size", 0)) == ranks,
                      f"eval.h5 records world_size {ranks}: {e.attrs.get('world_size')}")

    def buffers_after_each_step(broadcast):
        run = f"buffers-{broadcast}"
        short = [DPTRAIN, "train", "--data", data, "--arch", "resnet8", "--epochs", "1",
                 "--batch-size", "16", "--threads", "1", "--output-dir", out, "--run-name", run,
                 "--max-steps-per-epoch", "6", "--checkpoint-every-steps", "1",
                 "--keep-checkpoints", "10", "--broadcast-buffers", broadcast]
        steps = subprocess.run(mpirun_command(MPIEXEC, 2, short), capture_output=True, text=True,
                               timeout=240)
        check(steps.returncode == 0,
              f"--broadcast-buffers {broadcast} run exits 0: {steps.stderr[-500:]}")
        rows = []
        for name in sorted(os.listdir(os.path.join(out, run))):
            if name.startswith("checkpoint-e"):
                with h5py.File(os.path.join(out, run, name)) as c:
                    rows.append(c["train_state/buffers_by_rank"][()])
        return rows

    synced = buffers_after_each_step("true")
    check(len(synced) == 6 and all(np.array_equal(r[0], r[1]) for r in synced),
          f"with broadcast, both ranks hold the same BN buffers after each of {len(synced)} steps")
    local = buffers_after_each_step("false")
    check(len(local) == 6 and all(not np.array_equal(r[0], r[1]) for r in local[:5]),
          "with --broadcast-buffers false, each rank keeps its own BN buffers")

    nccl = subprocess.run(mpirun_command(MPIEXEC, 2, train + ["--comm", "nccl", "--overwrite"]),
                          capture_output=True, text=True, timeout=120)
    check(nccl.returncode == 2 and "--comm" in nccl.stderr and "nccl" in nccl.stderr,
          f"--comm nccl refused on the CPU backend (exit {nccl.returncode}): "
          f"{nccl.stderr.strip().splitlines()[:1]}")

    # bench --peak takes the rank's share of the node's cores, as training does (it took all).
    peak = subprocess.run(mpirun_command(MPIEXEC, 2, [DPTRAIN, "bench", "--peak"]),
                          capture_output=True, text=True, timeout=120)
    share = max(1, min((os.cpu_count() or 1) // 2, len(os.sched_getaffinity(0))))
    check(peak.returncode == 0 and re.search(rf"threads={share}\b", peak.stdout),
          f"bench --peak on 2 ranks measures with the rank's {share} thread(s): "
          f"{peak.stdout.strip().splitlines()[-1:]}")

finish()
