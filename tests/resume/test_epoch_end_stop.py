"""A stop after an epoch's last step with --drop-last, resumed on a number of ranks with other
steps per epoch: 23 samples at global batch 12 take 1 step per epoch on 1 rank (floor(23/12))
and 2 on 3 ranks (floor(ceil(23/3) / 4)). The stop's checkpoint holds the epoch's steps all
done and its end pending; it resumes on 3 ranks as an epoch's end does (the epoch's row and
evaluation first, then epoch 2 from its start), where a checkpoint from inside an epoch is
refused (its position means nothing with other steps per epoch); resumed the other way, on fewer
steps per epoch, metrics.h5's /steps stays increasing and no named checkpoint replaces an older
one that has its name. Also: the epoch's count of skipped (NaN) updates survives such a stop.

usage: test_epoch_end_stop.py DPTRAIN MPIEXEC"""
import os
import sys
import tempfile

import h5py

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "comm"))
from checks import check, finish  # noqa: E402
from tiny_dataset import dptrain_command, run_command, text_attrs, write_tiny_dataset  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from paused_run import stop_at  # noqa: E402

DPTRAIN, MPIEXEC = sys.argv[1], sys.argv[2]
EXIT_USAGE, EXIT_PREEMPTED = 2, 7

with tempfile.TemporaryDirectory() as tmp:
    data = os.path.join(tmp, "t23.h5")
    write_tiny_dataset(data, train=23, test=8)
    out = os.path.join(tmp, "out")
    # Options may appear once only: each command gives its --epochs.
    base = ["train", "--arch", "resnet8", "--batch-size", "12", "--threads", "1",
            "--log-every", "1", "--output-dir", out]

    def command(ranks, args, epochs="3", drop_last="true", dataset=data):
        return dptrain_command(DPTRAIN, MPIEXEC, ranks, base + [
            "--data", dataset, "--epochs", epochs, "--drop-last", drop_last] + args)

    code, stdout, stderr = stop_at(command(1, ["--run-name", "end", "--pause-at-step", "1"]), 1)
    with h5py.File(os.path.join(out, "end", "checkpoint.h5")) as f:
        a = text_attrs(f)
        at = (a["epoch"], a["step_in_epoch"], a["steps_per_epoch"], a["trigger"])
    check(code == EXIT_PREEMPTED and "epoch 1/3 done" not in stdout and at == (0, 1, 1, "signal"),
          f"stopped at epoch 1's last step on 1 rank: exit {code}, checkpoint (epochs done, "
          f"steps, steps per epoch, trigger) {at}, before the epoch's end {stderr[-500:]}")
    code, stdout, stderr = run_command(command(3, ["--run-name", "end", "--resume", "auto"]), 240)
    lines = [l for l in stdout.splitlines() if l.startswith("epoch ")]
    check(code == 0 and lines[:1] and lines[0].startswith("epoch 1/3 done")
          and "epoch 2/3 step 1/2" in stdout and "epoch 1/3 step" not in stdout,
          f"resumed on 3 ranks (2 steps per epoch): epoch 1's end, then epoch 2 from its start "
          f"(exit {code}) {lines[:2]} {stderr[-500:]}")
    with h5py.File(os.path.join(out, "end", "metrics.h5")) as f:
        epochs = list(f["history/epoch"][()])
    check(epochs == [1, 2, 3], f"every epoch's row once: {epochs}")

    # The other way: stopped at epoch 1's last step on 3 ranks (2 steps per epoch), resumed on 1
    # (1 step per epoch), which counts the checkpoint's 2 updates as 1: /steps stays increasing,
    # the rows past the new count replaced by the resumed ones.
    code, _, stderr = stop_at(command(3, ["--run-name", "fewer", "--pause-at-step", "2"]), 2)
    code2, stdout2, stderr2 = run_command(command(1, ["--run-name", "fewer", "--resume", "auto"]),
                                          240)
    with h5py.File(os.path.join(out, "fewer", "metrics.h5")) as f:
        steps = [int(s) for s in f["steps/step"][()]]
        epochs = [int(e) for e in f["history/epoch"][()]]
    check((code, code2) == (EXIT_PREEMPTED, 0) and "count as 1" in stdout2 + stderr2
          and steps == [1, 2, 3] and epochs == [1, 2, 3],
          f"stopped on 3 ranks, resumed on 1 with fewer steps per epoch: /steps {steps} "
          f"increasing, epochs {epochs} (exits {code}, {code2}) {stderr2[-300:]}")

    # The same stop resumed by its path (an explicit --resume): the checkpoint is not past
    # itself, so nothing is set aside and the run goes on from it.
    code, _, stderr = stop_at(command(3, ["--run-name", "fewer-path", "--pause-at-step", "2"]), 2)
    resumed = os.path.join(out, "fewer-path", "checkpoint.h5")
    code2, stdout2, stderr2 = run_command(
        command(1, ["--run-name", "fewer-path", "--resume", resumed]), 240)
    aside = [n for n in os.listdir(os.path.join(out, "fewer-path")) if "superseded" in n]
    check((code, code2) == (EXIT_PREEMPTED, 0) and "is past it" not in stdout2 and not aside
          and os.path.exists(resumed),
          f"stopped on 3 ranks, resumed on 1 by --resume PATH: nothing set aside {aside} "
          f"(exits {code}, {code2}) {stderr2[-300:]}")

    # Named checkpoints across such a resume: 47 samples take 4 steps per epoch on 3 ranks
    # (floor(16 / 4)) and 3 on 1. Epoch 1's end on 3 ranks is checkpoint-e0001-s000004; resumed
    # on 1 rank it counts as 3 updates, so the step after it is epochs 1, step 4 again: that
    # checkpoint takes "-v2" and the older one stays as written.
    data47 = os.path.join(tmp, "t47.h5")
    write_tiny_dataset(data47, train=47, test=8)
    named = ["--run-name", "named", "--keep-checkpoints", "5"]
    code, _, stderr = run_command(command(3, named, epochs="1", dataset=data47), 240)
    older = os.path.join(out, "named", "checkpoint-e0001-s000004.h5")
    check(code == 0 and os.path.exists(older), f"3 ranks, 1 epoch, keeping 5 checkpoints: "
          f"{older} (exit {code}) {stderr[-300:]}")
    with open(older, "rb") as f:
        older_bytes = f.read()
    code2, _, stderr2 = run_command(
        command(1, named + ["--resume", "auto", "--checkpoint-every-steps", "1"], epochs="2",
                dataset=data47), 240)
    names = sorted(n for n in os.listdir(os.path.join(out, "named")) if n.startswith("checkpoint-"))
    with open(older, "rb") as f:
        kept = f.read() == older_bytes
    with h5py.File(os.path.join(out, "named", "checkpoint-e0001-s000004-v2.h5")) as f:
        a = text_attrs(f)
        newer = (a["world_size"], a["epoch"], a["step_in_epoch"], a["step"])
    check((code, code2) == (0, 0) and kept and newer == (1, 1, 1, 4)
          and names == ["checkpoint-e0001-s000004-v2.h5", "checkpoint-e0001-s000004.h5",
                        "checkpoint-e0001-s000005.h5", "checkpoint-e0002-s000006.h5"],
          f"a checkpoint after a resume on fewer steps per epoch never replaces an older one of "
          f"the same name: {names}, the older unchanged {kept}, the new one (world, epochs, step "
          f"in epoch, step) {newer} (exits {code}, {code2}) {stderr[-300:]} {stderr2[-300:]}")

    # From inside an epoch (3 ranks, 2 steps per epoch, checkpointed after step 1): refused on 1.
    code, _, stderr = run_command(
        command(3, ["--run-name", "mid", "--checkpoint-every-steps", "1", "--keep-checkpoints",
                    "2"], epochs="1"), 240)
    mid = os.path.join(out, "mid", "checkpoint-e0000-s000001.h5")
    check(code == 0 and os.path.exists(mid), f"a mid-epoch checkpoint on 3 ranks (exit {code})")
    code, _, stderr = run_command(command(1, ["--run-name", "mid1", "--resume", mid]), 120)
    check(code == EXIT_USAGE and "steps per epoch" in stderr,
          f"a checkpoint from inside an epoch resumed with other steps per epoch: refused "
          f"(exit {code}) {stderr.strip()[-300:]}")

    # The epoch's skipped updates survive the stop: without --drop-last an epoch has 2 steps;
    # a NaN injected at step 1, a stop at step 2 (epoch 1's last), resumed: /history's
    # skipped_steps as the uninterrupted run's.
    nan = ["--inject-nan-at-step", "1"]
    code, _, stderr = run_command(command(1, nan + ["--run-name", "nan"], drop_last="false"))
    code2, _, _ = stop_at(command(1, nan + ["--run-name", "nan-stop", "--pause-at-step", "2"],
                                  drop_last="false"), 2)
    code3, _, stderr3 = run_command(
        command(1, nan + ["--run-name", "nan-stop", "--resume", "auto"], drop_last="false"))
    skipped = []
    for run in ("nan", "nan-stop"):
        with h5py.File(os.path.join(out, run, "metrics.h5")) as f:
            skipped.append(list(f["history/skipped_steps"][()]))
    check((code, code2, code3) == (0, EXIT_PREEMPTED, 0) and skipped[0] == [1, 0, 0]
          and skipped[1] == skipped[0],
          f"skipped updates through a stop at an epoch's last step: uninterrupted {skipped[0]}, "
          f"stopped and resumed {skipped[1]} (exits {code}, {code2}, {code3}) {stderr3[-300:]}")

finish()
print("epoch-end stop passed")
