"""An explicit --resume of an older checkpoint starts another branch of the run: a finished
4-epoch run keeping 3 checkpoints is resumed from its epoch-2 checkpoint and killed in epoch 3;
the newer checkpoints were set aside (not deleted), so --resume auto continues the new branch
(not the abandoned epoch-4 checkpoint) and the run ends equal to an uninterrupted one, every
epoch's row and the weights bit for bit. A branch started from another directory's
checkpoint and killed before its own first one resumes from that start (linked as the new
directory's checkpoint.h5), to the same end. A metrics.h5 whose history stops before its
checkpoint's epochs (another branch's record) is refused, and an explicit --resume so refused
sets nothing aside.

usage: test_resume_older.py DPTRAIN"""
import glob
import os
import sys
import tempfile

import h5py
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "comm"))
from checks import check, finish  # noqa: E402
from tiny_dataset import run_command, write_tiny_dataset  # noqa: E402

DPTRAIN = sys.argv[1]
EXIT_USAGE, EXIT_DATA = 2, 3
HISTORY = ("epoch", "lr", "train_loss", "train_acc", "val_loss", "val_acc")

with tempfile.TemporaryDirectory() as tmp:
    data = os.path.join(tmp, "tiny.h5")
    write_tiny_dataset(data, train=48, test=16)  # 4 steps per epoch at batch 12
    out = os.path.join(tmp, "out")

    def train(run, *extra):
        return run_command([DPTRAIN, "train", "--data", data, "--arch", "resnet8", "--batch-size",
                            "12", "--threads", "1", "--epochs", "4", "--keep-checkpoints", "3",
                            "--output-dir", out, "--run-name", run] + list(extra), 120)

    def rows(run):
        with h5py.File(os.path.join(out, run, "metrics.h5")) as f:
            return {k: f["history"][k][()] for k in HISTORY}

    def weights(run):
        with h5py.File(os.path.join(out, run, "checkpoint.h5")) as f:
            return {k: f["params"][k][()] for k in f["params"]}

    code, _, stderr = train("ref")
    check(code == 0, f"the uninterrupted run (exit {code}) {stderr[-300:]}")
    code, _, stderr = train("k")
    check(code == 0, f"the run to branch (exit {code}) {stderr[-300:]}")

    run = os.path.join(out, "k")
    older = os.path.join(run, "checkpoint-e0002-s000008.h5")
    code, stdout, _ = train("k", "--resume", older, "--fail-at-step", "11", "--fail-mode", "kill")
    aside = sorted(os.path.basename(p) for p in glob.glob(os.path.join(run, "*.superseded-*")))
    check(code != 0 and len(aside) == 3
          and {a.split(".superseded-")[0] for a in aside}
          == {"checkpoint", "checkpoint-e0003-s000012", "checkpoint-e0004-s000016"}
          and "set aside as" in stdout,
          f"resumed from epoch 2's checkpoint, killed at step 11 (exit {code}): the newer "
          f"checkpoints set aside {aside}")

    code, stdout, stderr = train("k", "--resume", "auto")
    said = [l for l in stdout.splitlines() if l.startswith("resumed from")]
    check(code == 0 and said and older in said[0],
          f"--resume auto continues the new branch (exit {code}) {said} {stderr[-300:]}")
    want, got = rows("ref"), rows("k")
    check(all(np.array_equal(want[k], got[k]) for k in HISTORY),
          f"every epoch's row as the uninterrupted run's: epochs {got['epoch']}")
    want_w, got_w = weights("ref"), weights("k")
    check(want_w.keys() == got_w.keys() and all(np.array_equal(want_w[k], got_w[k]) for k in want_w),
          "final weights bit for bit")

    # A branch started from another directory's checkpoint, killed before its first one: the
    # run directory's checkpoint.h5 is that start, so --resume auto continues from it (and its
    # metrics.h5, begun at epoch 3, is taken up) to the uninterrupted run's end.
    start = os.path.join(out, "ref", "checkpoint-e0002-s000008.h5")
    start_bytes = open(start, "rb").read()
    code, stdout, _ = train("fresh", "--resume", start, "--fail-at-step", "11", "--fail-mode",
                            "kill")
    code2, _, stderr2 = train("fresh", "--resume", "auto")
    fresh = rows("fresh")
    check(code != 0 and "linked as" in stdout and code2 == 0
          and list(fresh["epoch"]) == [3, 4]
          and all(np.array_equal(want[k][2:], fresh[k]) for k in HISTORY)
          and all(np.array_equal(want_w[k], weights("fresh")[k]) for k in want_w)
          and open(start, "rb").read() == start_bytes,
          f"a branch from another directory's checkpoint, killed, resumed: epochs "
          f"{fresh['epoch']} as the uninterrupted run's, the start file unchanged (exit {code}, "
          f"then {code2}) {stderr2.strip()[-300:]}")

    def history_cut_to(run, epochs):
        """Copies ref's metrics.h5 into run's directory with its history cut to `epochs` rows."""
        os.makedirs(os.path.join(out, run), exist_ok=True)
        with h5py.File(os.path.join(out, "ref", "metrics.h5")) as src, \
                h5py.File(os.path.join(out, run, "metrics.h5"), "w") as dst:
            for key, value in src.attrs.items():
                dst.attrs[key] = value
            for name in src:
                src.copy(src[name], dst, name)
            for field in dst["history"]:
                dst["history"][field].resize((epochs,))

    # A history that stops before the checkpoint's epochs: not this checkpoint's record.
    history_cut_to("short", 2)
    short = os.path.join(out, "short")
    os.link(os.path.join(out, "ref", "checkpoint.h5"), os.path.join(short, "checkpoint.h5"))
    before = open(os.path.join(short, "metrics.h5"), "rb").read()
    code, _, stderr = train("short", "--resume", "auto")
    check(code == EXIT_DATA and "ends at epoch 2" in stderr and "another branch" in stderr
          and open(os.path.join(short, "metrics.h5"), "rb").read() == before,
          f"a history of 2 epochs beside a checkpoint of 4: refused, untouched (exit {code}) "
          f"{stderr.strip()[-300:]}")

    # The same refusal for an explicit --resume of an older checkpoint: nothing set aside.
    history_cut_to("refused", 1)
    refused = os.path.join(out, "refused")
    for name in os.listdir(os.path.join(out, "ref")):
        if name.startswith("checkpoint"):
            os.link(os.path.join(out, "ref", name), os.path.join(refused, name))
    listed = sorted(os.listdir(refused))
    code, _, stderr = train("refused", "--resume",
                            os.path.join(refused, "checkpoint-e0002-s000008.h5"))
    check(code == EXIT_DATA and "ends at epoch 1" in stderr
          and sorted(n for n in os.listdir(refused) if n != ".dptrain.lock") == listed,
          f"an explicit --resume refused: the run directory as it was (exit {code}) "
          f"{sorted(os.listdir(refused))}")

    # Another run's checkpoint resumed explicitly into this run's directory (another --seed):
    # its metrics.h5 would join two runs' rows. Refused naming --resume, before its history is
    # compared with the checkpoint's epochs (the seed-5 run failed in epoch 2: its history ends
    # before the checkpoint's); nothing changed.
    code, _, stderr = train("seeded", "--seed", "5", "--fail-at-step", "5")
    check(code != 0, f"a run with --seed 5 failing in epoch 2 (exit {code}) {stderr[-300:]}")
    seeded = os.path.join(out, "seeded")
    listed = sorted(os.listdir(seeded))
    before = open(os.path.join(seeded, "metrics.h5"), "rb").read()
    code, _, stderr = train("seeded", "--resume",
                            os.path.join(out, "ref", "checkpoint-e0002-s000008.h5"))
    check(code == EXIT_USAGE and "option --resume:" in stderr
          and "records another run (--seed 5, where this run's is 0)" in stderr
          and sorted(os.listdir(seeded)) == listed
          and open(os.path.join(seeded, "metrics.h5"), "rb").read() == before,
          f"a seed-0 checkpoint into a seed-5 run's directory: refused, untouched (exit {code}) "
          f"{stderr.strip()[-300:]}")

finish()
