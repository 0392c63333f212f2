"""NaN/Inf steps under 2 ranks: a NaN injected into one rank's loss gradient at step 3 must make
every rank skip that update together (parameters and momentum exactly those after step 2),
count it in metrics.h5's /history/skipped_steps, and the run must finish normally; NaNs at
every step from step 2 on must stop the job after --max-consecutive-skips steps with exit
code 4 (numerical), counted on across a checkpoint and resume. A checkpoint whose classifier
bias holds a NaN is a damaged file (no run writes one): `eval` refuses it, exit 3, naming the
tensor. One whose finite weights make a logit overflow is not evaluated as if its NaN loss were
a result: `dptrain eval` exits 4 on both ranks naming it, and writes no eval file; resumed for
another epoch, its skipped steps are followed by an evaluation that stops the run (exit 4)
after writing the epoch's metrics row and before its checkpoint, the epoch's summary line
saying that no update was made and the evaluation's loss was not finite."""
import filecmp
import os
import shutil
import sys
import tempfile

import h5py
import numpy as np

from reliability_util import EXIT, Checker, write_tiny_dataset

check = Checker(sys.argv[1], sys.argv[2])

with tempfile.TemporaryDirectory() as tmp:
    data = os.path.join(tmp, "tiny.h5")
    write_tiny_dataset(data, train=96, test=16)
    out = os.path.join(tmp, "out")

    def train(run, steps, *extra):
        return ["train", "--data", data, "--arch", "resnet8", "--epochs", "1", "--batch-size",
                "16", "--threads", "1", "--lr-schedule", "constant", "--max-steps-per-epoch",
                str(steps), "--output-dir", out, "--run-name", run] + list(extra)

    def state(run):
        with h5py.File(os.path.join(out, run, "checkpoint.h5"), "r") as f:
            return {f"{g}/{k}": f[g][k][:] for g in ("params", "optimizer/momentum")
                    for k in f[g]}

    # Reference: two clean steps.
    code, err, _, took = check.run(train("two", 2), ranks=2, limit=120)
    check.record(code == 0, "reference run (2 steps)", f"exit {code} in {took:.1f} s "
                 f"{err.strip()[-300:]}")
    # Three steps, the third poisoned on rank 1 only.
    code, err, stdout, took = check.run(
        train("nan", 3, "--inject-nan-at-step", "3", "--inject-nan-rank", "1"), ranks=2,
        limit=120)
    check.record(code == 0 and "update skipped" in stdout, "NaN on rank 1 at step 3: run finishes",
                 f"exit {code} in {took:.1f} s {err.strip()[-300:]}")
    if code == 0:
        with h5py.File(os.path.join(out, "nan", "metrics.h5"), "r") as f:
            skipped = f["history/skipped_steps"][:].tolist()
            loss = f["history/train_loss"][:]
        check.record(skipped == [1] and np.isfinite(loss).all(), "metrics.h5 counts the skip",
                     f"skipped_steps {skipped}, train_loss {loss}")
        ref, got = state("two"), state("nan")
        same = ref.keys() == got.keys() and all(np.array_equal(ref[k], got[k]) for k in ref)
        check.record(same and len(ref) > 10, "skipped update left weights and momentum untouched",
                     f"{len(ref)} tensors compared")

    # A NaN in the classifier's bias: no run writes one (a NaN step is skipped), so the file is
    # damaged, refused before it is evaluated.
    nan_bias = os.path.join(tmp, "nan-bias.h5")
    shutil.copy(os.path.join(out, "two", "checkpoint.h5"), nan_bias)
    with h5py.File(nan_bias, "r+") as f:  # h5py recomputes the Fletcher-32 checksum
        f["params/fc.bias"][0] = np.nan
    check.expect_error("eval of a checkpoint with a NaN classifier bias",
                       ["eval", "--checkpoint", nan_bias, "--data", data, "--threads", "1"],
                       EXIT["data"], [nan_bias, "params/fc.bias holds nan"], ranks=2, limit=90,
                       one_line=False)
    # Finite weights whose logit overflows: class 0's weights and bias at float32's largest
    # make its logit inf for every image (the pooled features are not negative), and the
    # softmax's inf - inf its loss NaN.
    poisoned = os.path.join(tmp, "poisoned.h5")
    shutil.copy(os.path.join(out, "two", "checkpoint.h5"), poisoned)
    with h5py.File(poisoned, "r+") as f:
        largest = np.finfo(np.float32).max
        f["params/fc.weight"][0, :] = largest
        f["params/fc.bias"][0] = largest
    eval_file = os.path.join(tmp, "poisoned-eval.h5")
    check.expect_error("eval of a checkpoint whose logit overflows",
                       ["eval", "--checkpoint", poisoned, "--data", data, "--threads", "1",
                        "--output", eval_file],
                       EXIT["numerical"], [poisoned, "loss is", "nan"], ranks=2, limit=90,
                       one_line=False)
    check.record(not os.path.exists(eval_file), "no eval file written", eval_file)

    # The same poison resumed for a second epoch: both steps are skipped, and the epoch's
    # evaluation stops the run after its metrics row, before its checkpoint.
    run = os.path.join(out, "poisoned")
    shutil.copytree(os.path.join(out, "two"), run)
    shutil.copy(poisoned, os.path.join(run, "checkpoint.h5"))
    resume = train("poisoned", 2, "--resume", "auto", "--max-consecutive-skips", "5")
    resume[resume.index("--epochs") + 1] = "2"
    err, stdout = check.expect_error("training's evaluation with NaN logits", resume,
                                     EXIT["numerical"],
                                     ["evaluation after epoch 2", "loss is", "nan"], ranks=2,
                                     limit=90, one_line=False)
    summary = [l for l in (stdout + err).splitlines() if "epoch 2/2 done" in l]
    check.record(len(summary) == 1 and "train - (every update skipped)" in summary[0]
                 and "val loss not finite" in summary[0],
                 "the epoch's summary line says so (no update, no finite evaluation loss)",
                 summary)
    with h5py.File(os.path.join(run, "metrics.h5"), "r") as f:
        val_loss, val_acc = f["history/val_loss"][:], f["history/val_acc"][:]
    check.record(len(val_loss) == 2 and np.isfinite(val_loss[0]) and np.isnan(val_loss[1])
                 and np.isnan(val_acc[1]),
                 "the epoch's metrics row is written, val_loss and val_acc NaN",
                 f"val_loss {val_loss}, val_acc {val_acc}")
    check.record(filecmp.cmp(poisoned, os.path.join(run, "checkpoint.h5"), shallow=False),
                 "no checkpoint of the epoch whose evaluation failed", run)
    code, err, out_text, _ = check.run(["inspect", os.path.join(run, "metrics.h5")])
    row = [l for l in (out_text + err).splitlines() if "epoch   2" in l]
    check.record(code == 0 and len(row) == 1 and "train loss -  val acc -" in row[0],
                 "inspect shows the epoch without an update or a finite evaluation as '-' "
                 "(before: train loss -nan)", row or err.strip()[-300:])

    # NaN from step 2 on, for good: the third skip in a row stops the job.
    check.expect_error("consecutive skips stop the job",
                       train("stop", 10, "--inject-nan-at-step", "2", "--inject-nan-rank", "0",
                             "--inject-nan-steps", "100", "--max-consecutive-skips", "3"),
                       EXIT["numerical"],
                       ["--max-consecutive-skips", "3 training steps in a row", "epoch 1 step 4"],
                       ranks=2, limit=90, one_line=False)

    # The run of skips goes on through a checkpoint: two skipped at epoch 1's end, the third
    # (the resumed run's first step) stops the job, as it would have without the resume.
    nan_on = ["--inject-nan-at-step", "2", "--inject-nan-rank", "0", "--inject-nan-steps", "100",
              "--max-consecutive-skips", "3"]
    code, err, _, took = check.run(train("carried", 3, *nan_on), ranks=2, limit=90)
    check.record(code == 0, "two skips in a row at an epoch's end: the run finishes",
                 f"exit {code} in {took:.1f} s {err.strip()[-300:]}")
    with h5py.File(os.path.join(out, "carried", "checkpoint.h5"), "r") as f:
        carried = int(f.attrs["consecutive_skipped_steps"])
    check.record(carried == 2, "the checkpoint keeps the run of skips", f"{carried}")
    resume = train("carried", 3, "--resume", "auto", *nan_on)
    resume[resume.index("--epochs") + 1] = "2"
    check.expect_error("the resumed run counts on from the checkpoint's skips", resume,
                       EXIT["numerical"], ["3 training steps in a row", "epoch 2 step 1"],
                       ranks=2, limit=90, one_line=False)

check.finish()
