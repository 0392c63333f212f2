"""A stop signal during an epoch's evaluation on 2 ranks: rank 0 is held after its first
evaluation batch (--pause-in-eval), rank 1 waiting for it in the batch's agreement, and SIGUSR1
reaches both. The evaluation is abandoned on both (exit 7) without the epoch's row; the checkpoint holds the
epoch's steps done and its end pending, and the resumed run (its evaluation first) equals the
uninterrupted run: every epoch's row, the final evaluation and weights bit for bit; the time
spent in the abandoned evaluation is not counted as the epoch's. The same during the run's
last evaluation (which may outlast Slurm's warning): abandoned, checkpointed with the run's
end pending; the resumed run evaluates, and does not abandon that evaluation for another
signal (a job that cannot fit it would requeue for ever): it finishes as the uninterrupted
run. In a Slurm job that will not be requeued (no --resume auto), such a signal lets the run
finish, as nothing would continue it.

usage: test_stop_in_eval.py DPTRAIN MPIEXEC"""
import os
import sys
import tempfile

import h5py
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "comm"))
from checks import check, finish  # noqa: E402
from tiny_dataset import dptrain_command, run_command, text_attrs, write_tiny_dataset  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from paused_run import stop_at, stop_held_as_long  # noqa: E402

DPTRAIN, MPIEXEC = sys.argv[1], sys.argv[2]
EXIT_PREEMPTED = 7
ELAPSED_COLUMN = 10  # EpochTotals::to_array: the epoch's wall time before the stop
HISTORY = ("epoch", "steps", "lr", "train_loss", "train_acc", "val_loss", "val_acc")

with tempfile.TemporaryDirectory() as tmp:
    data = os.path.join(tmp, "tiny.h5")
    # 300 test images a rank: two evaluation batches (256 and 44), so rank 0 stops early.
    write_tiny_dataset(data, train=48, test=600)
    out = os.path.join(tmp, "out")

    def command(run, epochs, *extra):
        return dptrain_command(DPTRAIN, MPIEXEC, 2, [
            "train", "--data", data, "--arch", "resnet8", "--batch-size", "12", "--threads", "1",
            "--epochs", epochs, "--output-dir", out, "--run-name", run] + list(extra))

    def history(run):
        with h5py.File(os.path.join(out, run, "metrics.h5")) as f:
            return {k: f["history"][k][()] for k in HISTORY if k in f["history"]}

    def final(run):
        with h5py.File(os.path.join(out, run, "metrics.h5")) as f:
            acc = float(f["final"].attrs["accuracy"]) if "final" in f else None
        with h5py.File(os.path.join(out, run, "checkpoint.h5")) as f:
            params = {k: f["params"][k][()] for k in f["params"]}
        return acc, params

    code, _, stderr = run_command(command("full", "2"))
    check(code == 0, f"the uninterrupted run (exit {code}) {stderr[-300:]}")

    # Rank 0 is held in the evaluation as long as the run took to get there (its start, 4 steps).
    code, stdout, stderr, reached = stop_held_as_long(
        command("stopped", "2", "--pause-in-eval", "true"), "eval")
    with h5py.File(os.path.join(out, "stopped", "checkpoint.h5")) as f:
        a = text_attrs(f)
        at = (a["epoch"], a["step_in_epoch"], a["steps_per_epoch"], a["trigger"])
        elapsed = f["train_state"]["epoch_totals"][:, ELAPSED_COLUMN]
    rows = len(history("stopped").get("epoch", []))
    check(code == EXIT_PREEMPTED and "epoch 1/2 done" not in stdout and rows == 0
          and at == (0, 4, 4, "signal"),
          f"SIGUSR1 in epoch 1's evaluation: exit {code}, no epoch row ({rows}), checkpoint "
          f"(epochs done, steps, steps per epoch, trigger) {at} {stderr[-500:]}")
    # The epoch began after the process did and before the evaluation: counted up to the
    # evaluation it is less than the time to reach the hold, counted through the hold it is more.
    check(elapsed.max() < reached,
          f"the abandoned evaluation's time is not kept as the epoch's: {elapsed} s, "
          f"{reached:.2f} s from the start to the evaluation, held as long")

    code, stdout, stderr = run_command(command("stopped", "2", "--resume", "auto"))
    lines = [l for l in stdout.splitlines() if l.startswith("epoch ")]
    check(code == 0 and lines[:1] and lines[0].startswith("epoch 1/2 done")
          and "epoch 1/2 step" not in stdout,
          f"resumed: epoch 1's end (its evaluation), then epoch 2 (exit {code}) {lines[:2]} "
          f"{stderr[-300:]}")
    want, got = history("full"), history("stopped")
    same_rows = want.keys() == got.keys() and all(np.array_equal(want[k], got[k]) for k in want)
    check(same_rows and len(want["epoch"]) == 2,
          f"every epoch's row as the uninterrupted run's: {got} against {want}")
    (want_acc, want_params), (got_acc, got_params) = final("full"), final("stopped")
    check(got_acc == want_acc and want_params.keys() == got_params.keys()
          and all(np.array_equal(want_params[k], got_params[k]) for k in want_params),
          f"final evaluation ({got_acc} against {want_acc}) and weights bit for bit")

    # The run's last evaluation: abandoned as well, the resumed run evaluates.
    code, _, stderr = run_command(command("full1", "1"))
    check(code == 0, f"the uninterrupted 1-epoch run (exit {code}) {stderr[-300:]}")
    code, stdout, stderr = stop_at(command("last", "1", "--pause-in-eval", "true"), "eval")
    with h5py.File(os.path.join(out, "last", "metrics.h5")) as f:
        has_final = "final" in f
    with h5py.File(os.path.join(out, "last", "checkpoint.h5")) as f:
        a = text_attrs(f)
        at = (a["epoch"], a["step_in_epoch"], a["trigger"])
    check(code == EXIT_PREEMPTED and "epoch 1/1 done" not in stdout and not has_final
          and at == (0, 4, "signal"),
          f"SIGUSR1 in the run's last evaluation: exit {code}, no final results ({has_final}), "
          f"checkpoint (epochs done, steps, trigger) {at} {stderr[-500:]}")
    code, stdout, stderr = stop_at(
        command("last", "1", "--resume", "auto", "--pause-in-eval", "true"), "eval")
    want, got = history("full1"), history("last")
    same_rows = want.keys() == got.keys() and all(np.array_equal(want[k], got[k]) for k in want)
    (want_acc, want_params), (got_acc, got_params) = final("full1"), final("last")
    check(code == 0 and same_rows and got_acc == want_acc
          and all(np.array_equal(want_params[k], got_params[k]) for k in want_params),
          f"resumed, signalled in the evaluation it resumed into: finished (exit {code}) as "
          f"the uninterrupted run: rows {same_rows}, final accuracy {got_acc} against "
          f"{want_acc} {stderr[-300:]}")

    # In a Slurm job, without --resume auto (no requeued job would continue it): finishes.
    os.environ["SLURM_JOB_ID"] = "777"
    try:
        code, stdout, stderr = stop_at(command("unqueued", "1", "--pause-in-eval", "true"), "eval")
    finally:
        del os.environ["SLURM_JOB_ID"]
    want, got = history("full1"), history("unqueued")
    same_rows = want.keys() == got.keys() and all(np.array_equal(want[k], got[k]) for k in want)
    check(code == 0 and same_rows and final("unqueued")[0] == want_acc,
          f"SIGUSR1 in the last evaluation of a Slurm job's run that will not be requeued: it "
          f"finishes (exit {code}), as the uninterrupted run (rows {same_rows}) {stderr[-300:]}")

finish()
