"""`dptrain eval` feeds a checkpoint the input its run trained on: a run with --normalize false
is evaluated on unnormalised pixels too, so eval reproduces the run's final confusion matrix
and loss (before the checkpoint recorded --normalize, eval always normalised); a run with it
is normalised with the statistics it trained with, which the checkpoint records, also on a
file holding the same test images under other statistics (one packed from other training
images), where the file's own would change every input.

usage: test_eval_normalize.py DPTRAIN"""
import os
import shutil
import sys
import tempfile

import h5py
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "comm"))
from e2e_util import check, run_dptrain  # noqa: E402
from tiny_dataset import write_tiny_dataset  # noqa: E402

DPTRAIN = sys.argv[1]


def dptrain(*args):
    return run_dptrain(DPTRAIN, *args)


def same_as_run(run, eval_file):
    with h5py.File(os.path.join(run, "metrics.h5")) as m, h5py.File(eval_file) as e:
        same = np.array_equal(m["final/confusion_matrix"][:], e["eval/confusion_matrix"][:])
        return same, m["final"].attrs["loss"], e["eval"].attrs["loss"]


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
        same, loss_run, loss_eval = same_as_run(run, os.path.join(run, "eval.h5"))
        with h5py.File(os.path.join(run, "eval.h5")) as e:
            said = {k: e.attrs[k] for k in ("checkpoint_epoch", "checkpoint_step", "tta")}
            backend = e.attrs["backend"].decode()
        check(said == {"checkpoint_epoch": 2, "checkpoint_step": 8, "tta": 0}
              and backend.startswith("cpu backend"),
              f"eval.h5 says which checkpoint position and how: {said}, '{backend}'")
        check(same and abs(loss_run - loss_eval) <= 1e-5 * abs(loss_run),
              f"--normalize {normalize}: eval reproduces the final confusion matrix and loss "
              f"({loss_eval:.6f} vs {loss_run:.6f})")

    # The same test images under other statistics: evaluated as the run trained.
    other = os.path.join(tmp, "other-statistics.h5")
    shutil.copy(data, other)
    with h5py.File(other, "r+") as f:
        for node in (f, f["train"], f["test"]):
            node.attrs["mean"], node.attrs["std"] = [0.45] * 3, [0.3] * 3
    run = os.path.join(tmp, "out", "true")
    said = dptrain("eval", "--checkpoint", os.path.join(run, "checkpoint.h5"), "--data", other,
                   "--threads", "1", "--output", os.path.join(tmp, "other.h5"))
    same, loss_run, loss_eval = same_as_run(run, os.path.join(tmp, "other.h5"))
    check(same and abs(loss_run - loss_eval) <= 1e-5 * abs(loss_run)
          and "normalising with the statistics the checkpoint's run trained with" in said,
          f"a file with other statistics: normalised as the run trained, the final confusion "
          f"matrix and loss again ({loss_eval:.6f} vs {loss_run:.6f}), with a note")
