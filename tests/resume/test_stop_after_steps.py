"""--stop-after-steps N: a run that ends after N optimizer steps while its LR schedule (and
Lookahead) still span the whole run, as a benchmark of a run's first steps (the PyTorch peers'
--max-steps). Checked against the whole run on the same data and seed: the first N steps (loss
and LR) bit for bit, the run evaluated and written as at its end, its checkpoint evaluable by
`dptrain eval` with the same result, and refused by --resume with one line (its last epoch may
be cut short) though it holds the Lookahead average; so a signal at its last step lets it
finish. A checkpoint past the last update of a
run with a shorter --epochs is refused too. The cut epoch's last step prints its
progress line (with no time left) even where --log-every does not fall on it.

usage: test_stop_after_steps.py DPTRAIN"""
import os
import subprocess
import sys
import tempfile

import h5py

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "comm"))
from checks import check, finish  # noqa: E402
from tiny_dataset import write_tiny_dataset  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from paused_run import stop_at  # noqa: E402

DPTRAIN = sys.argv[1]
STOP = 20  # of 2 epochs x 17 steps: inside epoch 2
EXIT_USAGE = 2

with tempfile.TemporaryDirectory() as tmp:
    data = os.path.join(tmp, "tiny.h5")
    write_tiny_dataset(data)
    out = os.path.join(tmp, "out")
    base = ["train", "--data", data, "--arch", "resnet8", "--batch-size", "12", "--epochs", "2",
            "--lr", "0.1", "--lr-schedule", "linear-warmup-decay", "--lookahead-every", "5",
            "--threads", "1", "--output-dir", out]

    def run(args):
        return subprocess.run([DPTRAIN] + args, capture_output=True, text=True, timeout=240)

    whole = run(base + ["--run-name", "whole", "--log-every", "1"])
    # Every 7th step's progress line, and the cut epoch's last (its step 3) with no time left.
    stopped = run(base + ["--run-name", "stopped", "--stop-after-steps", str(STOP),
                          "--log-every", "7"])
    check(whole.returncode == 0 and stopped.returncode == 0,
          f"both runs exit 0 ({whole.returncode}, {stopped.returncode}) {stopped.stderr[-400:]}")
    last = [l for l in stopped.stdout.splitlines() if "epoch 2/2 step 3/17" in l]
    check(len(last) == 1 and last[0].endswith("eta 0:00"),
          f"the cut epoch's last step has its progress line, nothing left: {last}")
    with h5py.File(os.path.join(out, "whole", "metrics.h5")) as w, \
            h5py.File(os.path.join(out, "stopped", "metrics.h5")) as s:
        lr_w, lr_s = w["steps/lr"][()], s["steps/lr"][()]
        loss_w, loss_s = w["steps/loss"][()], s["steps/loss"][()]
        check(len(lr_s) == STOP and len(lr_w) == 34, f"{len(lr_s)} steps of {len(lr_w)} taken")
        check(lr_s.tobytes() == lr_w[:STOP].tobytes() and loss_s.tobytes() == loss_w[:STOP].tobytes(),
              f"the first {STOP} steps' LR and loss equal the whole run's bit for bit (the "
              "schedule spans the whole run)")
        check(lr_w[STOP - 1] > lr_w[-1], "the LR at the stop has not yet decayed to the end's")
        check("final" in s and list(s["history/epoch"]) == [1, 2],
              "the stopped run evaluated and wrote /final, with epochs 1 and 2 recorded")
        accuracy = float(s["final"].attrs["accuracy"])
    checkpoint = os.path.join(out, "stopped", "checkpoint.h5")
    with h5py.File(checkpoint) as c:
        check(int(c.attrs["stop_after_steps"]) == STOP and int(c.attrs["step"]) == STOP,
              "its checkpoint records the stop, after step 20")
    evaluated = subprocess.run([DPTRAIN, "eval", "--checkpoint", checkpoint, "--data", data],
                               capture_output=True, text=True, timeout=120)
    with h5py.File(os.path.join(out, "stopped", "eval.h5")) as e:
        check(evaluated.returncode == 0 and float(e["eval"].attrs["accuracy"]) == accuracy,
              f"dptrain eval of its checkpoint gives the run's final accuracy {accuracy}")
    resumed = run(base + ["--run-name", "stopped", "--resume", checkpoint])
    lines = [l for l in resumed.stderr.splitlines() if "--stop-after-steps" in l]
    check(resumed.returncode == EXIT_USAGE and len(lines) == 1 and "not resumed" in lines[0],
          f"--resume from it is refused with one line (exit {resumed.returncode}): {lines}")
    code, _, stderr = stop_at([DPTRAIN] + base + ["--run-name", "signalled", "--stop-after-steps",
                                                  str(STOP), "--pause-at-step", str(STOP)], STOP)
    with h5py.File(os.path.join(out, "signalled", "metrics.h5")) as f:
        has_final = "final" in f
    check(code == 0 and has_final,
          f"SIGUSR1 at its last step: it finishes, evaluated (exit {code}, /final {has_final}) "
          f"{stderr[-300:]}")
    # A checkpoint past a shorter run's last step: the whole run's (34 steps) under
    # --epochs 1.5 (26 steps), whose last epoch is still its second, was taken as that run's
    # finished model; refused, and a finished run resumed with its own --epochs re-evaluated.
    whole_checkpoint = os.path.join(out, "whole", "checkpoint.h5")
    shorter = list(base)
    shorter[shorter.index("--epochs") + 1] = "1.5"
    resumed = run(shorter + ["--run-name", "shorter", "--resume", whole_checkpoint])
    lines = [l for l in resumed.stderr.splitlines() if "--resume" in l]
    check(resumed.returncode == EXIT_USAGE and len(lines) == 1
          and "beyond the 26 steps of this run's --epochs" in lines[0],
          f"a checkpoint after 34 steps is refused under --epochs 1.5 (exit "
          f"{resumed.returncode}): {lines or resumed.stderr[-300:]}")
    again = run(base + ["--run-name", "again", "--resume", whole_checkpoint])
    check(again.returncode == 0 and "evaluating the final model again" in again.stdout,
          f"the finished run resumed with its own --epochs evaluates again (exit "
          f"{again.returncode}) {again.stderr[-300:]}")
    # So does a finished fractional run: its last checkpoint, after 26 updates, records its
    # cut epoch as done (2 epochs, step 0), which counts 34 steps but is 26 updates.
    finished = run(shorter + ["--run-name", "fractional"])
    again = run(shorter + ["--run-name", "fractional", "--resume", "auto"])
    check(finished.returncode == 0 and again.returncode == 0
          and "evaluating the final model again" in again.stdout,
          f"a finished --epochs 1.5 run resumed with its own --epochs evaluates again (exit "
          f"{finished.returncode}, {again.returncode}) {again.stderr[-300:]}")
finish()
