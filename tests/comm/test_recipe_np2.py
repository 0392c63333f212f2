"""jobs/cifar10_94_fast.cfg (the airbench94 recipe: whitening init, frozen whitening weight, a
bias frozen after its epoch, summed label-smoothed loss, two LR groups, Lookahead over weights
and BN statistics, translate + alternating flip, TTA 2) under mpirun -np 2 with --sync-bn
against the same config on 1 rank, on the tiny dataset at 32x32 with the recipe's sizes scaled
down (batch 16, 64 whitening images, 2.5 epochs = 30 steps, the bias frozen after epoch 1).

- The whitening filters come from the first N training images, not from a rank's shard: the
  frozen whiten.weight is bit-identical on 1 and 2 ranks (Lookahead's average of a constant is
  that constant, exactly).
- Every step's LR equals the 1-rank run's (the schedule and its T count global steps).
- Step 1's loss equals the 1-rank run's within float rounding (1e-5 relative: the same 16
  samples and draws, sums in another order), and step 2's (the first to see step 1's backward,
  sync BN's gradient pieces included) is over 10x closer to it than a plain 2-rank run's.
- The whole run (every step's loss, the Lookahead-averaged weights and BN statistics) stays
  within 4x of the run's own rounding noise, measured in the same test as the deviation of
  the 1-rank run on 2 threads from it on 1 (oneDNN sums in another order; SGD amplifies such
  differences over the steps, most in the BN shifts at 64x the LR: ~2e-2 relative after 30
  steps). A plain 2-rank run, BN over each rank's 8 samples, differs by over 10x that, so the
  comparison can tell.

With a fourth argument `bf16` every run takes --precision bf16 --device cpu (bf16 convolutions
and activations, sync BN's pieces on bf16 tensors) and the test is skipped (exit 77) where
dptrain finds no bf16 arithmetic on this CPU. In bf16 the whole-run comparison cannot tell: a
last-bit difference in an f32 sum rounds an activation to the neighbouring bf16 value, and over
30 steps the 1-rank run on 2 threads drifts from it on 1 nearly as far as a plain 2-rank run
does. So in bf16 the run is compared at steps 1 and 2, where a plain 2-rank run's BN over half
the batch shows plainly (oracle_trajectory_airbench94_bf16 checks the trajectory against
PyTorch).

All four runs use oneDNN's direct convolutions (DPTRAIN_CPU_CONV=direct): their thread count
changes how they split their sums, which is what makes the yardstick; the Winograd kernels at
this test's sizes sum alike on 1 and 2 threads but differently on a rank's half batch, so with
them the yardstick would measure nothing. What is under test, the ranks' semantics, does not
depend on the convolution algorithm (tests/backend/test_conv.cpp checks each against the naive
loop).
"""
import os
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checks import check, finish  # noqa: E402
from scaled_recipe import (FIRST_STEP_BAR, check_same_start, deviation, read_run,  # noqa: E402
                           recipe_args)
from tiny_dataset import dptrain_command, write_tiny_dataset  # noqa: E402

DPTRAIN, MPIEXEC, CONFIG = sys.argv[1], sys.argv[2], sys.argv[3]
PRECISION = sys.argv[4] if len(sys.argv) > 4 else "fp32"
# bf16 on the CPU backend: --device cpu, so that a CPU without bf16 refuses it (auto would run
# fp32 instead, and this test would check fp32 under the bf16 name).
PRECISION_ARGS = ["--precision", "bf16", "--device", "cpu"] if PRECISION == "bf16" else []
SKIPPED = 77
NOISE_FACTOR = 4.0

os.environ["DPTRAIN_CPU_CONV"] = "direct"  # inherited by mpirun's ranks on this host

with tempfile.TemporaryDirectory() as tmp:
    data = os.path.join(tmp, "tiny32.h5")
    write_tiny_dataset(data, side=32)
    out = os.path.join(tmp, "out")

    def train(ranks, name, *extra):
        args = recipe_args(CONFIG, data, out, name) + PRECISION_ARGS + list(extra)
        proc = subprocess.run(dptrain_command(DPTRAIN, MPIEXEC, ranks, args),
                              capture_output=True, text=True, timeout=240)
        # Only the first run's refusal (usage error, exit 2) means the CPU lacks bf16: a later
        # run that says so (ranks that disagree) is a failure, not a skip.
        if (PRECISION == "bf16" and name == "one" and proc.returncode == 2
                and "neither AVX512-BF16 nor AMX" in proc.stderr):
            print("SKIPPED: this CPU has no bf16 arithmetic: no --precision bf16 here")
            sys.exit(SKIPPED)
        check(proc.returncode == 0, f"{name} ({ranks} rank(s)) exits 0: {proc.stderr[-800:]}")
        return read_run(os.path.join(out, name))

    one = train(1, "one", "--threads", "1")
    two = train(2, "two", "--sync-bn", "--threads", "1")
    plain = train(2, "plain", "--threads", "1")

    check_same_start(one, two, "on 2 ranks --sync-bn", "1 rank's")
    first = abs(one[0]["loss"][0] - plain[0]["loss"][0]) / abs(one[0]["loss"][0])
    check(first > 10 * FIRST_STEP_BAR,
          f"a plain 2-rank run's step 1 differs by far more ({first:.2g}: the test can tell)")
    # Step 2's loss is the first to see step 1's backward (sync BN's pieces on both ranks).
    second, second_plain = (abs(r[0]["loss"][1] - one[0]["loss"][1]) / abs(one[0]["loss"][1])
                            for r in (two, plain))
    check(10 * second < second_plain, f"step 2's loss on 2 ranks --sync-bn is over 10x closer to "
          f"1 rank's ({second:.2g}) than a plain 2-rank run's ({second_plain:.2g})")
    if PRECISION == "bf16":
        finish()
        sys.exit(0)
    noise = train(1, "threads2", "--threads", "2")

    synced, own, unsynced = deviation(one, two), deviation(one, noise), deviation(one, plain)
    print("deviation from 1 rank (largest step loss, parameter, BN statistic): "
          f"2 ranks --sync-bn {synced}, 1 rank on 2 threads {own}, plain 2 ranks {unsynced}")
    check(np.all(own > 0), "the run's own rounding noise is measurable")
    check(np.all(synced <= NOISE_FACTOR * own),
          f"the whole run on 2 ranks --sync-bn stays within {NOISE_FACTOR:g}x of 1 rank's own "
          "rounding noise (30 step losses, Lookahead-averaged weights and BN statistics)")
    check(np.all(unsynced > 10 * own), "plain 2 ranks differ by far more (the test can tell)")

finish()
