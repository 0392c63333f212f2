"""Exact resume on the CPU backend, with RANKS ranks (1: dptrain alone, 2+: mpirun):
a run interrupted and resumed with --resume auto equals an uninterrupted one bit for bit — every
step's loss and learning rate (/steps), every epoch's metrics (/history) and the final weights,
BN statistics (every rank's) and momentum. Interruptions: a rank SIGKILLed mid-epoch (the run
continues from the last --checkpoint-every-steps checkpoint) and SIGUSR1 (the ranks agree on a
step, checkpoint, exit 7; at the run's last step too), and signals after the last evaluation
that must not fail a finished run.
Also: --keep-checkpoints keeps the newest K named files with
checkpoint.h5 the newest; and on another world size a mid-epoch and an epoch-boundary
checkpoint both resume.

usage: test_exact_resume.py DPTRAIN MPIEXEC RANKS"""
import os
import signal
import subprocess
import sys
import tempfile
import time

import h5py

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "comm"))
from checks import check, finish  # noqa: E402
from tiny_dataset import dptrain_command, run_command, text_attrs, write_tiny_dataset  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from paused_run import stop_at, wait_released  # noqa: E402
from run_snapshot import differences, snapshot  # noqa: E402

DPTRAIN, MPIEXEC, RANKS = sys.argv[1], sys.argv[2], int(sys.argv[3])
EXIT_PREEMPTED = 7
EPOCHS, STEPS_PER_EPOCH = 3, 13  # 203 samples, global batch 16: 13 steps on 1 and on 2 ranks


def command(ranks, args):
    return dptrain_command(DPTRAIN, MPIEXEC, ranks, ["train"] + args)


def run(ranks, args, timeout=240):
    return run_command(command(ranks, args), timeout)


def rank_pids(mpirun_pid):
    """The dptrain processes mpirun started: its children named dptrain."""
    pids = []
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)
            name = fields[0].split("(", 1)[1]
            if int(fields[1].split()[1]) == mpirun_pid and name == "dptrain":
                pids.append(int(entry))
        except (OSError, ValueError, IndexError):
            pass
    return pids


def rank_of(pids, rank):
    """The pid among `pids` whose MPI rank (Open MPI's OMPI_COMM_WORLD_RANK) is `rank`."""
    for pid in pids:
        with open(f"/proc/{pid}/environ", "rb") as f:
            if f"OMPI_COMM_WORLD_RANK={rank}".encode() in f.read().split(b"\0"):
                return pid
    return None


with tempfile.TemporaryDirectory() as tmp:
    data = os.path.join(tmp, "tiny.h5")
    write_tiny_dataset(data)
    out = os.path.join(tmp, "out")
    # Options may appear once only: "base" leaves out --epochs ("full" adds it).
    base = ["--data", data, "--arch", "resnet8", "--batch-size", "16",
            "--lr", "0.2", "--lr-schedule", "onecycle", "--crop-padding", "2", "--flip", "true",
            "--label-smoothing", "0.1", "--dampening", "0.3", "--threads", "1",
            "--bucket-mb", "0.05", "--output-dir", out, "--log-every", "1"]
    full = base + ["--epochs", str(EPOCHS)]

    code, stdout, stderr = run(RANKS, full + ["--run-name", "straight"])
    check(code == 0, f"uninterrupted run exits 0 (got {code}) {stderr[-500:]}")
    straight = snapshot(os.path.join(out, "straight"))
    check(len(straight["steps/loss"]) == EPOCHS * STEPS_PER_EPOCH,
          f"/steps holds {EPOCHS * STEPS_PER_EPOCH} steps ({len(straight['steps/loss'])})")

    # 1. SIGKILL on the last rank at step 19 (epoch 2, step 6); checkpoints every 5 steps, so
    # the resume starts from step 15 (epoch 2, step 2): mid-epoch, with the loader skipping.
    killed = full + ["--run-name", "killed", "--checkpoint-every-steps", "5"]
    code, _, _ = run(RANKS, killed + ["--fail-at-step", "19", "--fail-rank", str(RANKS - 1),
                                      "--fail-mode", "kill"])
    check(code != 0, f"run with a SIGKILLed rank fails (exit {code})")
    wait_released(os.path.join(out, "killed", "metrics.h5"))
    with h5py.File(os.path.join(out, "killed", "checkpoint.h5"), "r") as f:
        check((f.attrs["step"], f.attrs["epoch"], f.attrs["step_in_epoch"]) == (15, 1, 2),
              f"last checkpoint at step 15 = epoch 2 step 2 (step {f.attrs['step']} epoch "
              f"{f.attrs['epoch']} step_in_epoch {f.attrs['step_in_epoch']})")
    with h5py.File(os.path.join(out, "killed", "metrics.h5"), "r") as f:
        check(len(f["history/epoch"]) == 1, "metrics.h5 of the killed run holds epoch 1")
    code, stdout, stderr = run(RANKS, killed + ["--resume", "auto"])
    check(code == 0, f"--resume auto exits 0 (got {code}) {stderr[-800:]}")
    check("resumed from" in stdout and "epoch 2/3 step 3/13" in stdout,
          "the resumed run starts at epoch 2 step 3")
    differ = differences(straight, snapshot(os.path.join(out, "killed")))
    check(not differ, f"killed + resumed == uninterrupted, bitwise ({differ[:5]})")
    with h5py.File(os.path.join(out, "killed", "metrics.h5"), "r") as f:
        resume = text_attrs(f["resumes/1"])
        check(resume["step"] == "15" and resume["world_size"] == str(RANKS),
              "metrics.h5 records the resume under /resumes/1")

    # 1b. The same with time-based checkpoints (rank 0's clock decides, every rank follows):
    # where they fall varies from run to run, the result must not.
    timed = full + ["--run-name", "timed", "--checkpoint-every-minutes", "0.0005"]
    code, _, _ = run(RANKS, timed + ["--fail-at-step", "19", "--fail-rank", str(RANKS - 1),
                                     "--fail-mode", "kill"])
    wait_released(os.path.join(out, "timed", "metrics.h5"))
    with h5py.File(os.path.join(out, "timed", "checkpoint.h5"), "r") as f:
        attrs = text_attrs(f)
        check(code != 0 and attrs["trigger"] in ("minutes", "epoch") and attrs["step"] < 19,
              f"timed checkpoints: killed at step 19, last checkpoint at step {attrs['step']} "
              f"({attrs['trigger']})")
    code, _, stderr = run(RANKS, timed + ["--resume", "auto"])
    differ = differences(straight, snapshot(os.path.join(out, "timed")))
    check(code == 0 and not differ, f"timed checkpoints: resumed == uninterrupted ({differ[:5]})")

    # 2. SIGUSR1 at step 4 (the test option --pause-at-step holds every rank there until the
    # signal arrives; the run is too quick to hit a step by timing): every rank stops at that
    # step, checkpoints and exits 7; --resume auto finishes the run identically.
    args = full + ["--run-name", "signalled", "--pause-at-step", "4"]
    code, stdout_rest, stderr = stop_at(command(RANKS, args), 4)
    check(code == EXIT_PREEMPTED, f"SIGUSR1: exit {EXIT_PREEMPTED} (got {code}) {stderr[-800:]}")
    check("stopping on SIGUSR1" in stdout_rest, "the log says why it stopped")
    with h5py.File(os.path.join(out, "signalled", "checkpoint.h5"), "r") as f:
        stopped_at = int(f.attrs["step"])
        check(text_attrs(f)["trigger"] == "signal" and stopped_at == 4,
              f"signal checkpoint at step {stopped_at}, the step signalled")
    code, stdout, stderr = run(RANKS, args + ["--resume", "auto"])
    check(code == 0, f"resume after SIGUSR1 exits 0 (got {code}) {stderr[-800:]}")
    differ = differences(straight, snapshot(os.path.join(out, "signalled")))
    check(not differ, f"signalled + resumed == uninterrupted, bitwise ({differ[:5]})")

    # 3. A finished run resumed again (a requeued job that had completed) changes nothing.
    code, stdout, _ = run(RANKS, args + ["--resume", "auto"])
    check(code == 0 and not differences(straight, snapshot(os.path.join(out, "signalled"))),
          f"resuming a finished run exits 0 and changes nothing (exit {code})")

    # 3b. Signals at the run's last step and after it (Slurm's --signal=USR1@120 can land
    # there). At the last step the run stops with its end pending (checkpoint, exit 7), since
    # its last evaluation may outlast the warning; the resumed run evaluates and ends as the
    # uninterrupted run. Once that evaluation is done nothing is left to save: signals through
    # the last writes and MPI_Finalize let the run finish (exit 0) rather than die of them.
    last = EPOCHS * STEPS_PER_EPOCH
    late = full + ["--run-name", "late-signal"]
    code, _, stderr = stop_at(command(RANKS, late + ["--pause-at-step", str(last)]), last)
    with h5py.File(os.path.join(out, "late-signal", "checkpoint.h5"), "r") as f:
        attrs = text_attrs(f)
    check(code == EXIT_PREEMPTED and (attrs["step"], attrs["trigger"]) == (last, "signal"),
          f"SIGUSR1 at the last step: exit {code}, checkpoint at step {attrs['step']} "
          f"({attrs['trigger']}) {stderr[-500:]}")
    code, _, stderr = run(RANKS, late + ["--resume", "auto"])
    differ = differences(straight, snapshot(os.path.join(out, "late-signal")))
    check(code == 0 and not differ,
          f"stopped at the last step + resumed == uninterrupted (exit {code}) ({differ[:5]})")

    proc = subprocess.Popen(command(RANKS, full + ["--run-name", "after-eval"]),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    ranks = []
    for line in proc.stdout:
        # The ranks themselves are signalled: mpirun, which would forward the signal, does not
        # survive a signal during its own teardown, and that is not dptrain's to fix.
        ranks = ranks or ([proc.pid] if RANKS == 1 else rank_pids(proc.pid))
        if f"epoch {EPOCHS}/{EPOCHS} done" in line:  # after the last evaluation
            break
    check(len(ranks) == RANKS, f"found the {RANKS} rank processes ({ranks})")
    signals = 0
    while proc.poll() is None:
        for pid in ranks:
            try:
                os.kill(pid, signal.SIGUSR1)
                signals += 1
            except ProcessLookupError:
                pass
        time.sleep(0.002)
    stdout_rest, stderr = proc.communicate(timeout=120)
    with h5py.File(os.path.join(out, "after-eval", "metrics.h5"), "r") as f:
        epochs_done = len(f["history/epoch"])
        has_final = "final" in f
    check(proc.returncode == 0 and signals > 0 and epochs_done == EPOCHS and has_final,
          f"{signals} SIGUSR1 from the end of the last evaluation to the exit: exit "
          f"{proc.returncode}, {epochs_done} epochs and final results recorded {stderr[-500:]}")

    # 3b. SIGUSR1 to the last rank alone (a `kill` of one process): every rank stops at the
    # same step, exit 7, and rank 0's log says whose signal it was.
    if RANKS > 1:
        proc = subprocess.Popen(command(RANKS, base + ["--run-name", "one-rank-signal",
                                                       "--epochs", "200"]),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        last_rank = None
        for line in proc.stdout:
            if "epoch 1/200 step 2/13" in line:
                last_rank = rank_of(rank_pids(proc.pid), RANKS - 1)
                break
        if last_rank is not None:
            os.kill(last_rank, signal.SIGUSR1)
        else:  # the check below fails; the 200-epoch run must not outlive the test
            proc.kill()
        try:
            stdout_rest, stderr = proc.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
            stdout_rest, stderr = proc.communicate()
        check(last_rank is not None and proc.returncode == EXIT_PREEMPTED
              and "stopping on another rank's stop signal" in stdout_rest,
              f"SIGUSR1 to rank {RANKS - 1} only: exit {proc.returncode}, rank 0 names it "
              f"({stdout_rest[-300:]} {stderr[-300:]})")

    # 4. --keep-checkpoints 3 with a checkpoint every 4 steps: the 3 newest named files remain,
    # checkpoint.h5 is the newest of them (the same file), and no temporary file is left.
    keep = os.path.join(out, "keep")
    code, _, stderr = run(RANKS, base + ["--run-name", "keep", "--epochs", "1",
                                         "--checkpoint-every-steps", "4", "--keep-checkpoints", "3"])
    names = sorted(os.listdir(keep)) if os.path.isdir(keep) else []
    expect = [".dptrain.lock", "checkpoint-e0000-s000008.h5", "checkpoint-e0000-s000012.h5",
              "checkpoint-e0001-s000013.h5", "checkpoint.h5", "metrics.h5"]
    check(code == 0 and names == expect, f"--keep-checkpoints 3 keeps {names}")
    if code == 0 and "checkpoint.h5" in names:
        newest = os.stat(os.path.join(keep, "checkpoint-e0001-s000013.h5"))
        latest = os.stat(os.path.join(keep, "checkpoint.h5"))
        check(newest.st_ino == latest.st_ino, "checkpoint.h5 is the newest checkpoint (hard link)")

    # 4b. The first two steps NaN (skipped: no update, as torch's skipped optimizer.step), a
    # checkpoint after them, killed at step 3: the resumed run's first update is SGD's first,
    # buf = d, as in the uninterrupted run (it damped d against a zero buffer: --dampening 0.3).
    nan_first = base + ["--epochs", "1", "--inject-nan-at-step", "1", "--inject-nan-steps", "2"]
    code, _, stderr = run(RANKS, nan_first + ["--run-name", "nan-straight"])
    check(code == 0, f"a run whose first two steps are skipped exits 0 (got {code}) {stderr[-300:]}")
    nan_killed = nan_first + ["--run-name", "nan-killed", "--checkpoint-every-steps", "1"]
    code, _, _ = run(RANKS, nan_killed + ["--fail-at-step", "3", "--fail-rank", str(RANKS - 1),
                                          "--fail-mode", "kill"])
    wait_released(os.path.join(out, "nan-killed", "metrics.h5"))
    code, _, stderr = run(RANKS, nan_killed + ["--resume", "auto"])
    differ = differences(snapshot(os.path.join(out, "nan-straight")),
                         snapshot(os.path.join(out, "nan-killed")))
    check(code == 0 and not differ, f"skipped first steps, killed + resumed == uninterrupted "
          f"(exit {code}; {differ[:5]}) {stderr[-300:]}")

    # 5. Another world size: a mid-epoch checkpoint resumes (the rest of the epoch re-split
    # over the new ranks; tests/resume/test_resume_world_size.py checks the samples and the
    # trajectory), and so does an epoch-boundary one.
    other = 2 if RANKS == 1 else 1
    mid = os.path.join(keep, "checkpoint-e0000-s000012.h5")
    code, stdout, stderr = run(other, full + ["--run-name", "other-mid", "--resume", mid])
    check(code == 0 and "epoch 1/3 step 13/13" in stdout and "epoch 1/3 step 12/13" not in stdout,
          f"mid-epoch checkpoint of {RANKS} rank(s) resumes on {other} at epoch 1 step 13 "
          f"(exit {code}) {stderr[-500:]}")
    boundary = os.path.join(keep, "checkpoint-e0001-s000013.h5")
    code, stdout, stderr = run(other, base + ["--run-name", "other-boundary", "--epochs", "2",
                                              "--resume", boundary])
    check(code == 0 and "epoch 2/2 done" in stdout and "epoch 1/2 done" not in stdout,
          f"epoch-boundary checkpoint resumes on {other} ranks (exit {code}) {stderr[-500:]}")

finish()
print("exact resume passed")
