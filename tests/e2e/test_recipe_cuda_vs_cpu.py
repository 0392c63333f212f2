"""jobs/cifar10_94_fast.cfg (the airbench94 recipe: whitening init, frozen whitening weight, a
bias frozen after its epoch, summed label-smoothed loss, two LR groups, Lookahead over weights
and BN statistics, translate + alternating flip, TTA 2) on the CUDA backend against the same
run on the CPU backend, FP32, on the tiny dataset at 32x32 with the recipe's sizes scaled down
(batch 16, 64 whitening images, 2.5 epochs = 30 steps, the bias frozen after epoch 1).
What only a whole run reaches on the GPU is under test: the groups' SGD on views of the flat
device buffers, a frozen group dropping the captured graph, the whitening layer left out of
backward once frozen, the summed loss's scale inside a graph, Lookahead's average of device
tensors, and the TTA views of the final evaluation.

- The frozen whitening filters (computed on the host) are bit-identical, and every step's LR
  equals the CPU run's.
- Step 1's loss equals the CPU run's within float rounding (1e-5 relative: the same weights,
  samples and draws, sums in another order).
- The whole run (every step's loss, the Lookahead-averaged weights, the BN statistics and the
  final TTA-2 evaluation's loss) stays within 4x of what another convolution algorithm's
  rounding alone does to it, measured in the same test as the CPU run with oneDNN's default
  convolutions (Winograd where it applies) against it with direct ones. A CPU run with one
  recipe setting nudged (label smoothing 0.19 for 0.2) differs by over 10x that, so the
  comparison can tell.

Skipped (exit 77) where dptrain finds no usable GPU or was built without CUDA, except under
DPTRAIN_REQUIRE_GPU=on (tests/gpu/run_on_device.sh sets it), where that fails; and where the
host CPU has no AVX-512, whose absence leaves the CPU backend no Winograd kernels to measure
the yardstick with (the two CPU runs then agree bit for bit).
"""
import os
import subprocess
import sys
import tempfile

import h5py
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "comm"))
from checks import check, finish  # noqa: E402
from tiny_dataset import text_attrs, write_tiny_dataset  # noqa: E402

DPTRAIN, CONFIG = sys.argv[1], sys.argv[2]
SKIPPED = 77
FIRST_STEP_BAR, NOISE_FACTOR = 1e-5, 4.0


def relative(a, b):
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30))


def train(data, out, name, conv, *extra):
    """One scaled run; returns (stderr, its /steps loss and lr, checkpoint tensors, /final)."""
    args = [DPTRAIN, "train", "--config", CONFIG, "--data", data, "--batch-size", "16",
            "--epochs", "2.5", "--whiten-init", "64", "--freeze", "whiten.weight",
            "--freeze", "whiten.bias:1", "--lookahead-every", "4", "--threads", "1",
            "--output-dir", out, "--run-name", name, *extra]
    env = dict(os.environ, DPTRAIN_CPU_CONV=conv)
    proc = subprocess.run(args, capture_output=True, text=True, timeout=240, env=env)
    if proc.returncode != 0:
        return proc, None
    run = os.path.join(out, name)
    with h5py.File(os.path.join(run, "metrics.h5")) as f:
        steps = {k: f["steps"][k][()] for k in ("loss", "lr")}
        final = text_attrs(f["final"])
    with h5py.File(os.path.join(run, "checkpoint.h5")) as c:
        state = {f"{g}/{k}": c[g][k][()] for g in ("params", "buffers") for k in c[g]}
    return proc, (steps, state, final)


with tempfile.TemporaryDirectory() as tmp:
    data = os.path.join(tmp, "tiny32.h5")
    write_tiny_dataset(data, side=32)  # 203 images: 12 full steps of 16, the rest dropped
    out = os.path.join(tmp, "out")

    proc, gpu = train(data, out, "cuda", "direct", "--device", "cuda", "--deterministic")
    no_gpu = "no usable GPU" in proc.stderr or "has no CUDA backend" in proc.stderr
    if gpu is None and no_gpu and os.environ.get("DPTRAIN_REQUIRE_GPU") != "on":
        print("SKIPPED: --device cuda needs a usable GPU")
        sys.exit(SKIPPED)
    check(gpu is not None, f"the CUDA run exits 0: {proc.stderr[-800:]}")
    runs = {}
    for name, conv, extra in (("cpu", "direct", []), ("cpu_winograd", "winograd", []),
                              ("cpu_nudged", "direct", ["--label-smoothing", "0.19"])):
        proc, runs[name] = train(data, out, name, conv, "--device", "cpu", *extra)
        check(runs[name] is not None, f"{name} exits 0: {proc.stderr[-800:]}")
    if gpu is None or None in runs.values():
        finish()
    steps1, state1, final1 = runs["cpu"]
    steps, state, final = gpu

    check(len(steps["loss"]) == 30 and len(steps1["loss"]) == 30,
          f"30 steps each ({len(steps['loss'])}, {len(steps1['loss'])})")
    check(np.array_equal(state["params/whiten.weight"], state1["params/whiten.weight"]),
          "the frozen whitening filters are bit-identical on both backends")
    check(np.array_equal(steps["lr"], steps1["lr"]), "every step's LR equals the CPU run's")
    first = abs(steps["loss"][0] - steps1["loss"][0]) / abs(steps1["loss"][0])
    check(first <= FIRST_STEP_BAR, f"step 1's loss on CUDA equals the CPU's ({first:.2g})")

    def deviation(run):
        """From the CPU run: largest step loss, largest parameter, largest BN statistic, the
        final TTA-2 evaluation's loss."""
        run_steps, run_state, run_final = run

        def worst(keys):
            return max(relative(run_state[k], state1[k]) for k in keys)
        return np.array([
            float(np.max(np.abs(run_steps["loss"] - steps1["loss"]) / np.abs(steps1["loss"]))),
            worst([k for k in state1 if k.startswith("params/")]),
            worst([k for k in state1 if k.endswith(("running_mean", "running_var"))]),
            abs(float(run_final["loss"]) - float(final1["loss"])) / abs(float(final1["loss"]))])

    on_cuda, own, nudged = deviation(gpu), deviation(runs["cpu_winograd"]), \
        deviation(runs["cpu_nudged"])
    print("deviation from the CPU run (largest step loss, parameter, BN statistic, final loss): "
          f"CUDA {on_cuda}, CPU Winograd {own}, label smoothing 0.19 {nudged}")
    if not np.all(own > 0):
        print("SKIPPED: the CPU runs with Winograd and direct convolutions agree bit for bit "
              f"({own}): this CPU has no AVX-512 Winograd kernels to measure the yardstick with")
        sys.exit(SKIPPED)
    check(np.all(on_cuda <= NOISE_FACTOR * np.maximum(own, 1e-7)),
          f"the whole run on CUDA stays within {NOISE_FACTOR:g}x of that rounding (30 step losses, "
          "Lookahead-averaged weights, BN statistics, the TTA-2 evaluation)")
    check(np.all(nudged[:3] > 10 * own[:3]),
          "a run with label smoothing 0.19 differs by far more (the test can tell)")
    check(final["samples"] == final1["samples"], "the final evaluation saw every test image")

finish()
