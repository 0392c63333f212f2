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
host CPU has no AVX-512 (/proc/cpuinfo), whose absence leaves the CPU backend no Winograd
kernels to measure the yardstick with (the two CPU runs would agree bit for bit): there the
checks of the start still run, and a failed one fails the test.
"""
import os
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "comm"))
from checks import check, finish  # noqa: E402
from scaled_recipe import check_same_start, deviation, read_run, recipe_args  # noqa: E402
from tiny_dataset import write_tiny_dataset  # noqa: E402

DPTRAIN, CONFIG = sys.argv[1], sys.argv[2]
SKIPPED = 77
NOISE_FACTOR = 4.0


def cpu_has_avx512():
    with open("/proc/cpuinfo") as f:
        return any(line.startswith("flags") and " avx512f" in line for line in f)


def train(data, out, name, conv, *extra):
    """One scaled run: (the process, its read_run or None where it failed)."""
    args = [DPTRAIN] + recipe_args(CONFIG, data, out, name) + ["--threads", "1", *extra]
    env = dict(os.environ, DPTRAIN_CPU_CONV=conv)
    proc = subprocess.run(args, capture_output=True, text=True, timeout=240, env=env)
    return proc, read_run(os.path.join(out, name)) if proc.returncode == 0 else None


with tempfile.TemporaryDirectory() as tmp:
    data = os.path.join(tmp, "tiny32.h5")
    write_tiny_dataset(data, side=32)
    out = os.path.join(tmp, "out")

    proc, gpu = train(data, out, "cuda", "direct", "--device", "cuda", "--deterministic")
    no_gpu = "no usable GPU" in proc.stderr or "has no CUDA backend" in proc.stderr
    if gpu is None and no_gpu and os.environ.get("DPTRAIN_REQUIRE_GPU") != "on":
        print("SKIPPED: --device cuda needs a usable GPU")
        sys.exit(SKIPPED)
    check(gpu is not None, f"the CUDA run exits 0: {proc.stderr[-800:]}")
    yardstick = cpu_has_avx512()
    runs = {}
    for name, conv, extra in (("cpu", "direct", []), ("cpu_winograd", "winograd", []),
                              ("cpu_nudged", "direct", ["--label-smoothing", "0.19"])):
        if name == "cpu" or yardstick:
            proc, runs[name] = train(data, out, name, conv, "--device", "cpu", *extra)
            check(runs[name] is not None, f"{name} exits 0: {proc.stderr[-800:]}")
    if gpu is None or None in runs.values():
        finish()
    cpu = runs["cpu"]
    check_same_start(cpu, gpu, "on CUDA", "the CPU's")
    if not yardstick:
        finish()  # a failed check of the start fails the test; only the yardstick needs AVX-512
        print("SKIPPED: this CPU has no AVX-512, so no Winograd kernels to measure the whole "
              "run's yardstick with (the start's checks passed)")
        sys.exit(SKIPPED)

    on_cuda, own, nudged = (deviation(cpu, run, final_loss=True)
                            for run in (gpu, runs["cpu_winograd"], runs["cpu_nudged"]))
    print("deviation from the CPU run (largest step loss, parameter, BN statistic, final loss): "
          f"CUDA {on_cuda}, CPU Winograd {own}, label smoothing 0.19 {nudged}")
    check(np.all(own > 0), "the CPU runs with Winograd and with direct convolutions differ (the "
          "yardstick is measurable)")
    check(np.all(on_cuda <= NOISE_FACTOR * own),
          f"the whole run on CUDA stays within {NOISE_FACTOR:g}x of that rounding (30 step losses, "
          "Lookahead-averaged weights, BN statistics, the TTA-2 evaluation)")
    check(np.all(nudged[:3] > 10 * own[:3]),
          "a run with label smoothing 0.19 differs by far more (the test can tell)")
    check(gpu[2]["samples"] == cpu[2]["samples"], "the final evaluation saw every test image")

finish()
