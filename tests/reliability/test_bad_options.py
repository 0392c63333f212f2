"""Bad options: unknown or contradictory options, reliability options out of range, a batch
size that the ranks do not divide, an option-A shortcut on an arch without one, and a
checkpoint from another architecture, shortcut or class count (`dptrain eval` and `--resume`),
one clear error line naming the option or field, the
documented exit code, within seconds."""
import os
import sys
import tempfile

import h5py
import numpy as np
from reliability_util import EXIT, Checker, write_tiny_dataset


check = Checker(sys.argv[1], sys.argv[2])
USAGE, DATA = EXIT["usage"], EXIT["data"]

with tempfile.TemporaryDirectory() as tmp:
    ten = os.path.join(tmp, "ten.h5")
    write_tiny_dataset(ten, train=32, test=8)
    five = os.path.join(tmp, "five.h5")
    write_tiny_dataset(five, train=32, test=8, classes=5)
    out = os.path.join(tmp, "out")

    def train(*extra, data=ten, run="r", **overrides):
        """`dptrain train` on the tiny set; keyword overrides replace options (arch="resnet20")."""
        options = {"--data": data, "--arch": "resnet8", "--epochs": "1", "--batch-size": "8",
                   "--threads": "1", "--max-steps-per-epoch": "2", "--output-dir": out,
                   "--run-name": run}
        options.update({"--" + k.replace("_", "-"): v for k, v in overrides.items()})
        return ["train"] + [x for kv in options.items() for x in kv] + list(extra)

    check.expect_error("unknown option", train("--max-skips", "3"), USAGE, ["max-skips"])
    check.expect_error("contradictory --resume and --overwrite",
                       train("--resume", "auto", "--overwrite"), USAGE, ["--resume", "--overwrite"])
    check.expect_error("--max-consecutive-skips 0", train("--max-consecutive-skips", "0"), USAGE,
                       ["--max-consecutive-skips"])
    check.expect_error("negative --collective-timeout", train("--collective-timeout", "-1"),
                       USAGE, ["--collective-timeout"])
    check.expect_error("unknown --augment-on", train("--augment-on", "gpu"), USAGE,
                       ["--augment-on", "auto, host or device"])
    check.expect_error("unknown --fail-mode", train("--fail-mode", "explode"), USAGE,
                       ["--fail-mode", "stall"])
    check.expect_error("unknown --shortcut", train("--shortcut", "C"), USAGE,
                       ["--shortcut", "A, B or auto"])
    check.expect_error("--shortcut A on a torchvision arch",
                       train(arch="resnet18_cifar", shortcut="A"), USAGE,
                       ["--shortcut", "resnet18_cifar", "projections (B)"])
    check.expect_error("--nesterov with --dampening", train("--nesterov", "true",
                                                           "--dampening", "0.1"), USAGE,
                       ["--nesterov", "--dampening 0"])
    check.expect_error("unknown --lr-step-unit", train("--lr-step-unit", "iteration"), USAGE,
                       ["--lr-step-unit", "step or epoch"])
    check.expect_error("fractional milestone stepped per epoch",
                       train("--lr-step-unit", "epoch", "--lr-milestones", "0.5", epochs="2"),
                       USAGE, ["--lr-milestones", "whole epochs"])
    check.expect_error("--lr-points beside another schedule",
                       train("--lr-schedule", "linear-warmup-decay", "--lr-points", "0:1,1:0.1"),
                       USAGE, ["--lr-points", "only by --lr-schedule piecewise"])
    check.expect_error("unknown --onecycle-anneal", train("--onecycle-anneal", "cubic"), USAGE,
                       ["--onecycle-anneal", "cos or linear"])
    check.expect_error("batch not divisible by the ranks", train(run="b", batch_size="5"),
                       USAGE, ["--batch-size", "5 is not divisible by the 2 ranks"], ranks=2,
                       one_line=False)

    # A real checkpoint of resnet8 on the 10-class set, then uses that do not fit it.
    code, err, _, took = check.run(train(run="ref"))
    check.record(code == 0, "reference run", f"exit {code} in {took:.1f} s {err.strip()[-300:]}")
    ckpt = os.path.join(out, "ref", "checkpoint.h5")
    check.expect_error("eval: checkpoint for another class count",
                       ["eval", "--checkpoint", ckpt, "--data", five, "--threads", "1"], DATA,
                       ["checkpoint.h5", "10 classes", "five.h5 has 5 classes"])
    check.expect_error("resume: checkpoint of another architecture",
                       train("--resume", ckpt, run="x", arch="resnet20", epochs="2"),
                       USAGE, ["--resume", "--arch resnet8", "resnet20"])
    check.expect_error("resume: checkpoint with the other shortcut",
                       train("--resume", ckpt, run="z", shortcut="B", epochs="2"),
                       USAGE, ["--resume", "--shortcut A", "this run has B"])
    check.expect_error("resume: checkpoint for another class count",
                       train("--resume", ckpt, data=five, run="y", epochs="2"),
                       DATA, ["checkpoint.h5", "fc.weight has shape (10, 64)", "(5, 64)"])

    # A checkpoint from before --shortcut existed has no 'shortcut' attribute and was option B:
    # eval builds option B from it, and a resume with the default (option A) is refused.
    code, err, _, took = check.run(train(run="old", shortcut="B"))
    check.record(code == 0, "option-B run", f"exit {code} in {took:.1f} s {err.strip()[-300:]}")
    old = os.path.join(out, "old", "checkpoint.h5")
    with h5py.File(old, "r+") as f:  # the attribute and its entry in the list of string keys
        del f.attrs["shortcut"]
        keys = [k.decode() for k in f.attrs["string_keys"] if k != b"shortcut"]
        f.attrs["string_keys"] = np.array(keys, dtype=h5py.string_dtype())
    code, err, _, took = check.run(["eval", "--checkpoint", old, "--data", ten, "--threads", "1"])
    check.record(code == 0, "eval: a checkpoint without 'shortcut' is option B",
                 f"exit {code} in {took:.1f} s {err.strip()[-300:]}")
    check.expect_error("resume: an old (option-B) checkpoint under the default shortcut",
                       train("--resume", old, run="w", epochs="2"),
                       USAGE, ["--resume", "--shortcut B", "this run has A"])

check.finish()
