"""`dptrain eval` feeds a checkpoint the input its run trained on: a run with --normalize false
is evaluated on unnormalised pixels too, so eval reproduces the run's final confusion matrix
and loss (before the checkpoint recorded --normalize, eval always normalised).

usage: test_eval_normalize.py DPTRAIN"""
import os
import sys
import tempfile

import h5py
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "comm"))
from e2e_util import check, run_dptrain  # noqa: E402
from tiny_dataset import write_tiny_dataset  # noqa: E402

DPTRAIN = sys.argv[1]


def dptrain(*args):
    run_dptrain(DPTRAIN, *args)

with tempfile.TemporaryDirectory() as tmp:
    data = os.path.join(tmp, "tiny.h5")
    write_tiny_dataset(data, train=64, test=40)
    for normalize in ("false", "true"):
        out = os.path.join(tmp, "out")
        run = os.path.join(out, normalize)
        dptrain("train", "--data", data, "--arch", "resnet8", "--epochs", "2", "--batch-size",
                "16", "--threads", "1", "--normalize", normalize, "--output-dir", out,
                "--run-name", normalize)
        checkpoint = os.path.join(run, "checkpoint.h5")
        with h5py.File(checkpoint) as f:
            check(int(f.attrs["normalize"]) == (normalize == "true"),
                  f"--normalize {normalize}: recorded in the checkpoint")
        dptrain("eval", "--checkpoint", checkpoint, "--data", data, "--threads", "1")
        with h5py.File(os.path.join(run, "metrics.h5")) as m, \
                h5py.File(os.path.join(run, "eval.h5")) as e:
            same = np.array_equal(m["final/confusion_matrix"][:], e["eval/confusion_matrix"][:])
            loss_run, loss_eval = m["final"].attrs["loss"], e["eval"].attrs["loss"]
        check(same and abs(loss_run - loss_eval) <= 1e-5 * abs(loss_run),
              f"--normalize {normalize}: eval reproduces the final confusion matrix and loss "
              f"({loss_eval:.6f} vs {loss_run:.6f})")
