"""dptrain train --sync-bn under mpirun on the tiny dataset (resnet8: BatchNorm and ReLU).

- 2 ranks with --sync-bn and --broadcast-buffers false: both ranks hold the same BN buffers
  after every step without any broadcast, since both computed them from the same statistics
  of all 16 samples (plain DDP's ranks drift apart there, test_dptrain_mpi.py).
- The first step's loss on 2 ranks with --sync-bn equals the 1-rank run's within float
  rounding (1e-5: the same 16 samples and draws, the same initial weights, a forward of sums
  in another order); without --sync-bn it differs by far more, each rank normalising with
  its own 8 samples. Later steps are not compared: the runs part by rounding (see
  test_sync_bn_equivalence.cpp, which compares every step from the same state).
- On 1 rank --sync-bn is plain BatchNorm: every step's loss and the final weights and BN
  buffers are bit-identical to a run without it.
- metrics.h5 records the option (config attribute sync-bn) and the checkpoint too (sync_bn).
- --loss-reduction sum: one step on 2 ranks with --sync-bn equals 1 rank's (weights, relative
  to the step's size).
"""
import os
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

    def train(ranks, name, *extra, epochs="1"):
        args = [DPTRAIN, "train", "--data", data, "--arch", "resnet8", "--epochs", epochs,
                "--batch-size", "16", "--threads", "1", "--output-dir", out, "--run-name", name,
                "--max-steps-per-epoch", "4", "--checkpoint-every-steps", "1",
                "--keep-checkpoints", "10", *extra]
        proc = subprocess.run(mpirun_command(MPIEXEC, ranks, args), capture_output=True,
                              text=True, timeout=240)
        check(proc.returncode == 0, f"{name} ({ranks} ranks) exits 0: {proc.stderr[-800:]}")
        run = os.path.join(out, name)
        with h5py.File(os.path.join(run, "metrics.h5")) as f:
            losses = f["steps/loss"][()]
            option = text_attrs(f["config"])["sync-bn"]
        with h5py.File(os.path.join(run, "checkpoint.h5")) as c:
            state = {f"{g}/{k}": c[g][k][()] for g in ("params", "buffers") for k in c[g]}
            recorded = int(c.attrs["sync_bn"])
        per_step = []
        for name_ in sorted(os.listdir(run)):
            if name_.startswith("checkpoint-e"):
                with h5py.File(os.path.join(run, name_)) as c:
                    per_step.append(c["train_state/buffers_by_rank"][()])
        return losses, option, recorded, state, per_step, proc.stdout

    loss2, option2, recorded2, _, buffers2, log2 = train(
        2, "sync2", "--sync-bn", "--broadcast-buffers", "false")
    check(option2 == "true" and recorded2 == 1,
          f"metrics.h5 and the checkpoint record --sync-bn ({option2}, {recorded2})")
    check("BatchNorm statistics over all 2 ranks" in log2, "the log says what --sync-bn does")
    check(len(buffers2) == 4 and all(np.array_equal(r[0], r[1]) for r in buffers2),
          f"with --sync-bn and no broadcast, both ranks hold the same BN buffers after each of "
          f"{len(buffers2)} steps")

    loss1, option1, recorded1, state1, _, _ = train(1, "sync1", "--sync-bn")
    plain1, option0, recorded0, state0, _, _ = train(1, "plain1")
    check(option0 == "false" and recorded0 == 0, "without the option: false and 0 recorded")
    check(np.array_equal(loss1, plain1) and all(np.array_equal(state1[k], state0[k])
                                                  for k in state0),
          "on 1 rank --sync-bn is plain BatchNorm: losses, weights and buffers bit-identical")

    plain2, _, _, _, _, _ = train(2, "plain2")
    synced_diff, plain_diff = abs(loss2[0] - loss1[0]), abs(plain2[0] - loss1[0])
    print(f"step 1 loss: 1 rank {loss1[0]:.7f}, 2 ranks --sync-bn {loss2[0]:.7f} "
          f"(diff {synced_diff:.2g}), 2 ranks plain {plain2[0]:.7f} (diff {plain_diff:.2g})")
    check(synced_diff <= 1e-5, "2 ranks with --sync-bn take 1 rank's first step (loss)")
    check(plain_diff > 1e-3, "2 ranks without it do not (the comparison can tell)")

    # --loss-reduction sum: each rank scales its gradient by n_local x ranks, so 2 ranks with
    # --sync-bn take 1 rank's summed step; the update is 16x the mean's, so a factor off by
    # the rank count would show far above the tolerance.
    one = dict(epochs="0.25")  # ceil(0.25 x 4 steps) = 1 step
    _, _, _, sum1, _, _ = train(1, "sum1", "--lr", "0.01", "--loss-reduction", "sum", **one)
    _, _, _, sum2, _, _ = train(2, "sum2", "--sync-bn", "--lr", "0.01", "--loss-reduction", "sum",
                                **one)
    _, _, _, mean1, _, _ = train(1, "mean1", "--lr", "0.01", **one)
    keys = [k for k in sum1 if k.startswith("params/")]
    gap = max(float(np.max(np.abs(sum2[k] - sum1[k]))) for k in keys)
    step = max(float(np.max(np.abs(mean1[k] - sum1[k]))) for k in keys)
    print(f"--loss-reduction sum, one step: |2 ranks - 1 rank| {gap:.3g} vs the sum-mean gap "
          f"{step:.3g}")
    check(step > 0 and gap <= 1e-3 * step,
          "2 ranks with --loss-reduction sum take 1 rank's summed step")

finish()
