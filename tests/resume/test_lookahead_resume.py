"""Exact resume of an airbench94 recipe run with Lookahead (CPU backend), on RANKS ranks (1:
dptrain alone, 2: mpirun): the checkpoint holds the Lookahead average, so a run interrupted
and resumed with --resume auto equals an uninterrupted one bit for bit (every step's loss and
lr, every epoch's metrics, the final weights, every rank's BN statistics, momentum and the
average). The run has every option of jobs/cifar10_94_fast.cfg on a tiny 32x32x3 dataset (44
samples, batch 8, --drop-last: 5 steps per epoch; --epochs 2.6: T = 13 steps, the third epoch
cut after 3), Lookahead every 3 steps (after steps 3, 6, 9, 12, and 13 with d = 1). Interrupted:
(1) a rank SIGKILLed at step 9, resumed from the --checkpoint-every-steps 4 checkpoint of step
    8, mid-epoch 2 and two steps past the last Lookahead update (the average is not the
    weights there), before the whitening bias freezes at epoch 3;
(2) stopped by a signal at step 10, the end of epoch 2 (SIGTERM on 1 rank; on 2, SIGUSR1, as
    mpirun itself exits 1 after a SIGTERM): an epoch-boundary checkpoint, one step past an update.
On 2 ranks with --broadcast-buffers false, so that each rank's BN statistics and their average
are its own and a rank resuming with another rank's would show.
On 1 rank also: the same resume with the average replaced by the weights at the checkpoint (a
plausible bug: an average restarted on resume) must differ, which shows the comparison sees
the average; airbench95's later start (--lookahead-start-epoch 1 --lookahead-each-epoch)
resumed from before and from after the start equals its uninterrupted run, and refuses
another count of steps per epoch; another
--lookahead-every, -base, -power, -start-epoch or -each-epoch, Lookahead off,
and a checkpoint without an average resumed with Lookahead, are refused with one line naming --resume, the
option and the file; and the step-8 checkpoint resumed on 2 ranks with --sync-bn tracks the
1-rank run within reduction-order rounding (bars below), every rank ending with the same BN
statistics and average.

usage: test_lookahead_resume.py DPTRAIN MPIEXEC RANKS"""
import os
import shutil
import signal
import sys
import tempfile

import h5py
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "comm"))
from checks import check, finish  # noqa: E402
from tiny_dataset import dptrain_command, run_command, text_attrs, write_tiny_dataset  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from paused_run import stop_at, wait_released  # noqa: E402
from run_snapshot import differences, relative, snapshot, weights  # noqa: E402

DPTRAIN, MPIEXEC, RANKS = sys.argv[1], sys.argv[2], int(sys.argv[3])
EXIT_USAGE, EXIT_PREEMPTED = 2, 7
T, EVERY = 13, 3  # 5 steps per epoch
KILL_AT, CHECKPOINT_EVERY, RESUMED_AT = 9, 4, 8  # the last checkpoint before the kill: step 8
SIGNAL_AT = 10  # the last step of epoch 2
# 2 ranks with --sync-bn against 1 rank: the same global batches, BN statistics summed over the
# ranks, so only the order of float32 sums differs (a few ulps, 6e-8 each, per step, compounded
# over the 5 resumed steps). Bars as resume_world_size_sync_bn's: step losses within 1e-5
# (relative), final weights within 1e-6 (relative L2), orders of magnitude below what a lost
# or restarted average does to the weights (check 3).
TOL_STEP_LOSS, TOL_WEIGHTS = 1e-5, 1e-6


def command(ranks, args):
    return dptrain_command(DPTRAIN, MPIEXEC, ranks, ["train"] + args)


def run(ranks, args, timeout=240):
    return run_command(command(ranks, args), timeout)


def refusal(args, *expected):
    """Runs a resume that must be refused: exit 2 and one stderr line naming --resume that holds
    every expected piece. Returns (ok, the lines)."""
    code, _, stderr = run(1, args, timeout=120)
    lines = [line for line in stderr.splitlines() if "--resume" in line]
    ok = code == EXIT_USAGE and len(lines) == 1 and all(e in lines[0] for e in expected)
    return ok, (code, lines)


with tempfile.TemporaryDirectory() as tmp:
    data = os.path.join(tmp, "tiny32.h5")
    write_tiny_dataset(data, train=44, test=16, side=32)
    out = os.path.join(tmp, "out")
    # jobs/cifar10_94_fast.cfg's options, scaled to the tiny data. Options may appear once
    # only: "recipe" leaves out the Lookahead ones ("base" adds them).
    recipe = ["--data", data, "--arch", "airbench94", "--batch-size", "8", "--epochs", "2.6",
              "--drop-last", "true", "--loss-reduction", "sum", "--label-smoothing", "0.2",
              "--lr", "0.01", "--momentum", "0.85", "--nesterov", "true",
              "--weight-decay", "5e-3", "--bn-bias-lr-factor", "64",
              "--lr-schedule", "linear-warmup-decay", "--warmup-fraction", "0.23",
              "--lr-start-factor", "0.2", "--lr-end-factor", "0.07",
              "--whiten-init", "40", "--freeze", "whiten.weight", "--freeze", "whiten.bias:2",
              "--translate", "2", "--crop-padding", "0", "--flip", "alternating",
              "--eval-every", "0", "--tta", "2", "--threads", "1", "--bucket-mb", "0.5",
              "--output-dir", out, "--log-every", "1"]
    lookahead = ["--lookahead-every", str(EVERY), "--lookahead-base", "0.95",
                 "--lookahead-power", "3", "--lookahead-start-epoch", "0",
                 "--lookahead-each-epoch", "false"]
    # 2 ranks: each keeps its own BN statistics (and average), so the rows must go to their rank.
    base = recipe + lookahead + (["--broadcast-buffers", "false"] if RANKS == 2 else [])

    code, _, stderr = run(RANKS, base + ["--run-name", "straight"])
    check(code == 0, f"uninterrupted run exits 0 (got {code}) {stderr[-500:]}")
    straight = snapshot(os.path.join(out, "straight"))
    check(len(straight["steps/loss"]) == T, f"/steps holds T = {T} steps ({len(straight['steps/loss'])})")
    averages = straight["train_state/lookahead_buffers_by_rank"]
    check(RANKS == 1 or averages[0].tobytes() != averages[1].tobytes(),
          "each rank has an average of its own BN statistics")

    # 1. SIGKILL at step 9; the checkpoint of step 8 (epoch 2, step 3) resumes.
    killed = base + ["--run-name", "killed", "--checkpoint-every-steps", str(CHECKPOINT_EVERY)]
    code, _, _ = run(RANKS, killed + ["--fail-at-step", str(KILL_AT), "--fail-rank",
                                      str(RANKS - 1), "--fail-mode", "kill"])
    check(code != 0, f"run with a SIGKILLed rank fails (exit {code})")
    wait_released(os.path.join(out, "killed", "metrics.h5"))
    with h5py.File(os.path.join(out, "killed", "checkpoint.h5"), "r") as f:
        attrs = text_attrs(f)
        at = (attrs["step"], attrs["epoch"], attrs["step_in_epoch"])
        check(at == (RESUMED_AT, 1, 3) and attrs["lookahead_every"] == EVERY and
              (attrs["lookahead_base"], attrs["lookahead_power"]) == ("0.95", "3"),
              f"checkpoint at step 8 = epoch 2 step 3 with the Lookahead settings ({at}, "
              f"{attrs.get('lookahead_every')}, {attrs.get('lookahead_base')}, "
              f"{attrs.get('lookahead_power')})")
        moved = [n for n in f["params"] if f["params"][n][:].tobytes() !=
                 f["lookahead/params"][n][:].tobytes()]
        rows = f["train_state/lookahead_buffers_by_rank"].shape
        check(len(moved) > 0 and rows[0] == RANKS,
              f"the average is state of its own: {len(moved)} of {len(f['params'])} parameter "
              f"tensors differ from it 2 steps past its update; {RANKS} row(s) of BN averages")
    killed_copy = os.path.join(out, "killed-at-8")
    shutil.copytree(os.path.join(out, "killed"), killed_copy)
    code, stdout, stderr = run(RANKS, killed + ["--resume", "auto"])
    check(code == 0 and "epoch 2/3 step 4/5" in stdout and "epoch 2/3 step 3/5" not in stdout,
          f"--resume auto exits 0 and starts at epoch 2 step 4 (exit {code}) {stderr[-800:]}")
    differ = differences(straight, snapshot(os.path.join(out, "killed")))
    check(not differ, f"killed at step 9 + resumed from step 8 == uninterrupted, bitwise ({differ[:5]})")

    # 2. A signal at step 10, the last of epoch 2: the checkpoint is written at once, with the
    # epoch's steps done and its end (metrics row, evaluation) left to the resumed run, which
    # the stop does not wait for.
    sig = signal.SIGTERM if RANKS == 1 else signal.SIGUSR1
    signalled = base + ["--run-name", "signalled", "--pause-at-step", str(SIGNAL_AT)]
    code, stdout, stderr = stop_at(command(RANKS, signalled), SIGNAL_AT, sig=sig)
    check(code == EXIT_PREEMPTED and "epoch 2/3 done" not in stdout,
          f"{sig.name}: exit {EXIT_PREEMPTED} (got {code}) before the epoch's end {stderr[-800:]}")
    with h5py.File(os.path.join(out, "signalled", "checkpoint.h5"), "r") as f:
        attrs = text_attrs(f)
        at = (attrs["trigger"], attrs["step"], attrs["epoch"], attrs["step_in_epoch"])
        check(at == ("signal", SIGNAL_AT, 1, 5),
              f"signal checkpoint at step {SIGNAL_AT}, epoch 2's 5 steps done ({at})")
    code, stdout, stderr = run(RANKS, signalled + ["--resume", "auto"])
    check(code == 0 and "epoch 2/3 done" in stdout and "epoch 2/3 step" not in stdout
          and "epoch 3/3 step 1/5" in stdout,
          f"resume after {sig.name} exits 0, ends epoch 2 and goes on (exit {code}) "
          f"{stderr[-800:]}")
    differ = differences(straight, snapshot(os.path.join(out, "signalled")))
    check(not differ, f"signalled at step 10 + resumed == uninterrupted, bitwise ({differ[:5]})")

    if RANKS == 1:
        # 3. The comparison sees the average: restarted from the weights, the resume differs.
        restarted = os.path.join(out, "restarted")
        shutil.copytree(killed_copy, restarted)
        with h5py.File(os.path.join(restarted, "checkpoint.h5"), "r+") as f:
            for name in f["lookahead/params"]:
                f["lookahead/params"][name][...] = f["params"][name][:]
            for name in f["lookahead/buffers"]:
                f["lookahead/buffers"][name][...] = f["buffers"][name][:]
            f["train_state/lookahead_buffers_by_rank"][...] = f["train_state/buffers_by_rank"][:]
        code, _, stderr = run(1, base + ["--run-name", "restarted", "--resume", "auto"])
        check(code == 0, f"the resume with a restarted average exits 0 (got {code}) {stderr[-300:]}")
        if code == 0:
            loss, loss1 = snapshot(restarted)["steps/loss"], straight["steps/loss"]
            moved = relative(weights(restarted), weights(os.path.join(out, "straight")))
            check(loss[:KILL_AT].tobytes() == loss1[:KILL_AT].tobytes() and
                  loss[KILL_AT] != loss1[KILL_AT] and moved > 0,
                  f"with the average restarted at the resume, steps 1-9 are the same, step 10 "
                  f"(after the update of step 9) differs and so do the final weights ({moved:.2e})")

        # 4. Refusals: other Lookahead settings, Lookahead off, and no average in the checkpoint.
        checkpoint = os.path.join(killed_copy, "checkpoint.h5")
        for option, then, now in (("--lookahead-every", "3", "4"),
                                  ("--lookahead-base", "0.95", "0.9"),
                                  ("--lookahead-power", "3", "2.5"),
                                  ("--lookahead-start-epoch", "0", "1"),
                                  ("--lookahead-each-epoch", "false", "true"),
                                  ("--lookahead-every", "3", "0")):
            changed = [now if a == then and prev == option else a
                       for prev, a in zip([None] + base, base)]
            ok, seen = refusal(changed + ["--run-name", "changed", "--resume", checkpoint],
                               checkpoint, f"{option} {then}", f"this run has {now}")
            check(ok, f"a checkpoint of {option} {then} is refused with {now}: {seen}")
        code, _, stderr = run(1, recipe + ["--run-name", "plain", "--fail-at-step", "6",
                                           "--fail-mode", "kill"])
        plain = os.path.join(out, "plain", "checkpoint.h5")
        check(os.path.exists(plain), f"a run without Lookahead left its epoch-1 checkpoint "
                                     f"(exit {code})")
        ok, seen = refusal(base + ["--run-name", "plain-resumed", "--resume", plain],
                           plain, "holds no Lookahead average", "--lookahead-every 3")
        check(ok, f"a checkpoint without the average is refused with Lookahead on: {seen}")

        # 5. The 1-rank checkpoint of step 8 resumed on 2 ranks with --sync-bn.
        shutil.copytree(killed_copy, os.path.join(out, "two-ranks"))
        code, stdout, stderr = run(2, base + ["--run-name", "two-ranks", "--sync-bn", "--resume",
                                              "auto"])
        check(code == 0 and "epoch 2/3 step 4/5" in stdout,
              f"the 1-rank checkpoint resumes on 2 ranks at epoch 2 step 4 (exit {code}) "
              f"{stderr[-800:]}")
        if code == 0:
            two = snapshot(os.path.join(out, "two-ranks"))
            loss, loss1 = two["steps/loss"], straight["steps/loss"]
            check(loss[:RESUMED_AT].tobytes() == loss1[:RESUMED_AT].tobytes() and
                  two["steps/lr"].tobytes() == straight["steps/lr"].tobytes(),
                  "2 ranks: steps 1-8 and every step's lr bit for bit")
            step_dev = float(np.max(np.abs(loss[RESUMED_AT:] / loss1[RESUMED_AT:] - 1)))
            weight_dev = relative(weights(os.path.join(out, "two-ranks")),
                                  weights(os.path.join(out, "straight")))
            print(f"deviation of 2 ranks (--sync-bn) from 1: resumed step losses {step_dev:.2e} "
                  f"(max relative), final weights {weight_dev:.2e} (relative L2)", flush=True)
            check(step_dev < TOL_STEP_LOSS and weight_dev < TOL_WEIGHTS,
                  f"2 ranks track 1 within rounding (step losses < {TOL_STEP_LOSS}, weights < "
                  f"{TOL_WEIGHTS})")
            same = all(r.tobytes() == two[key][0].tobytes() for key in
                       ("train_state/buffers_by_rank", "train_state/lookahead_buffers_by_rank")
                       for r in two[key])
            check(same and two["train_state/lookahead_buffers_by_rank"].shape[0] == 2,
                  "2 ranks end with the same BN statistics and the same average of them")

    if RANKS == 1:
        # 6. airbench95's Lookahead (--lookahead-start-epoch 1 --lookahead-each-epoch): the
        # average starts from the weights at step 6 (the first multiple of 3 in epoch 2), the
        # weights become it at steps 10 and 13; killed at step 5 (resumed from step 4, before
        # the start) and at step 9 (from step 8, after it), each resume equals the
        # uninterrupted run bit for bit, which differs from the airbench94 one.
        late = [("1" if a == "0" and prev == "--lookahead-start-epoch" else
                 "true" if a == "false" and prev == "--lookahead-each-epoch" else a)
                for prev, a in zip([None] + base, base)]
        code, _, stderr = run(1, late + ["--run-name", "late-straight"])
        check(code == 0,
              f"a run with --lookahead-start-epoch 1 exits 0 (got {code}) {stderr[-300:]}")
        late_straight = snapshot(os.path.join(out, "late-straight"))
        check(weights(os.path.join(out, "late-straight")).tobytes() !=
              weights(os.path.join(out, "straight")).tobytes(),
              "starting the average later changes the run")
        for kill_at, resumed_at in ((5, "epoch 1/3 step 5/5"), (9, "epoch 2/3 step 4/5")):
            name = f"late-killed-{kill_at}"
            late_killed = late + ["--run-name", name, "--checkpoint-every-steps",
                                  str(CHECKPOINT_EVERY)]
            code, _, _ = run(1, late_killed + ["--fail-at-step", str(kill_at), "--fail-mode",
                                               "kill"])
            check(code != 0, f"--lookahead-start-epoch 1: killed at step {kill_at} (exit {code})")
            wait_released(os.path.join(out, name, "metrics.h5"))
            code, stdout, stderr = run(1, late_killed + ["--resume", "auto"])
            check(code == 0 and resumed_at in stdout,
                  f"--lookahead-start-epoch 1: killed at step {kill_at}, resumed at {resumed_at} "
                  f"(exit {code}) {stderr[-300:]}")
            differ = differences(late_straight, snapshot(os.path.join(out, name)))
            check(not differ, f"--lookahead-start-epoch 1: killed at step {kill_at} + resumed == "
                              f"uninterrupted, bitwise ({differ[:5]})")
        # The start step follows from the steps per epoch: even at an epoch boundary, where
        # other runs may change them, a late start refuses another count.
        code, _, _ = run(1, late + ["--run-name", "late-epoch-1", "--fail-at-step", "7",
                                    "--fail-mode", "kill"])
        boundary = os.path.join(out, "late-epoch-1", "checkpoint.h5")
        ok, seen = refusal(late + ["--run-name", "late-fewer", "--max-steps-per-epoch", "4",
                                   "--resume", boundary],
                           boundary, "steps per epoch 5", "--lookahead-start-epoch needs")
        check(ok, f"a late start's epoch-1 checkpoint is refused with 4 steps per epoch: {seen}")

finish()
print("Lookahead resume passed")
