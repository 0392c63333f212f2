"""jobs/cifar10_94_fast.cfg (the airbench94 recipe) scaled down for tests that hold one run of
it to another (2 ranks to 1: tests/comm/test_recipe_np2.py; CUDA to the CPU:
tests/e2e/test_recipe_cuda_vs_cpu.py): the tiny dataset at 32x32 (203 images: 12 full steps of
16 an epoch, the rest dropped), batch 16, 64 whitening images, 2.5 epochs = 30 steps, the
whitening weight frozen and its bias after epoch 1, Lookahead every 4 steps. A run is read
back as (steps: /steps loss and lr, state: the checkpoint's params/ and buffers/ tensors,
final: the final evaluation's attributes)."""
import os

import h5py
import numpy as np

from checks import check
from tiny_dataset import text_attrs

STEPS = 30
FIRST_STEP_BAR = 1e-5  # step 1's loss: the same samples and draws, sums in another order


def recipe_args(config, data, out, name):
    return ["train", "--config", config, "--data", data, "--batch-size", "16", "--epochs", "2.5",
            "--whiten-init", "64", "--freeze", "whiten.weight", "--freeze", "whiten.bias:1",
            "--lookahead-every", "4", "--output-dir", out, "--run-name", name]


def read_run(run_dir):
    with h5py.File(os.path.join(run_dir, "metrics.h5")) as f:
        steps = {k: f["steps"][k][()] for k in ("loss", "lr")}
        final = text_attrs(f["final"])
    with h5py.File(os.path.join(run_dir, "checkpoint.h5")) as c:
        state = {f"{g}/{k}": c[g][k][()] for g in ("params", "buffers") for k in c[g]}
    return steps, state, final


def relative(a, b):
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30))


def check_same_start(reference, run, who, than):
    """What two runs of the recipe must share exactly or nearly from the start: STEPS steps,
    the frozen whitening filters (computed on the host from the first images, whatever the
    ranks or the device) bit for bit, every step's LR, step 1's loss within FIRST_STEP_BAR."""
    (ref_steps, ref_state, _), (steps, state, _) = reference, run
    check(len(ref_steps["loss"]) == STEPS and len(steps["loss"]) == STEPS,
          f"{STEPS} steps each ({len(ref_steps['loss'])}, {len(steps['loss'])})")
    check(np.array_equal(state["params/whiten.weight"], ref_state["params/whiten.weight"]),
          f"the frozen whitening filters {who}: bit-identical to {than}")
    check(np.array_equal(steps["lr"], ref_steps["lr"]), f"every step's LR {who}: {than}")
    first = abs(steps["loss"][0] - ref_steps["loss"][0]) / abs(ref_steps["loss"][0])
    check(first <= FIRST_STEP_BAR,
          f"step 1's loss {who}: {than} within {FIRST_STEP_BAR:g} ({first:.2g})")


def deviation(reference, run, final_loss=False):
    """From the reference run: the largest step loss, parameter and BN statistic deviation
    (relative), and with `final_loss` the final evaluation's loss."""
    (ref_steps, ref_state, ref_final), (steps, state, final) = reference, run

    def worst(keys):
        return max(relative(state[k], ref_state[k]) for k in keys)
    found = [float(np.max(np.abs(steps["loss"] - ref_steps["loss"]) / np.abs(ref_steps["loss"]))),
             worst([k for k in ref_state if k.startswith("params/")]),
             worst([k for k in ref_state if k.endswith(("running_mean", "running_var"))])]
    if final_loss:
        found.append(abs(float(final["loss"]) - float(ref_final["loss"])) /
                     abs(float(ref_final["loss"])))
    return np.array(found)
