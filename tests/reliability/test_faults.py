"""Faults: a rank SIGKILLed at a random step, a rank that stalls while the other waits in a
collective (--collective-timeout; at a step and in the start-up; `eval`'s is
test_eval_stall.py), a full disk while writing a checkpoint, replacing
metrics.h5 or writing an eval file (RLIMIT_FSIZE), and a read-only run directory. Each must
end the job with a non-zero exit and one short line, never hang, and where a run had finished
epochs, leave metrics.h5 readable with every one of them and the last good checkpoint intact.
Also (as root) another user continues a run whose files it may only read."""
import filecmp
import os
import random
import resource
import shutil
import signal
import sys
import tempfile
import time

import h5py

from reliability_util import EXIT, Checker, write_tiny_dataset

check = Checker(sys.argv[1], sys.argv[2])

with tempfile.TemporaryDirectory() as tmp:
    os.chmod(tmp, 0o755)  # the read-only case runs dptrain as an unprivileged user
    data = os.path.join(tmp, "tiny.h5")
    write_tiny_dataset(data, train=96, test=16)
    os.chmod(data, 0o644)
    out = os.path.join(tmp, "out")
    os.makedirs(out)

    def train(run, *extra, epochs=2, steps=6, output=out):
        return ["train", "--data", data, "--arch", "resnet8", "--epochs", str(epochs),
                "--batch-size", "16", "--threads", "1", "--max-steps-per-epoch", str(steps),
                "--output-dir", output, "--run-name", run] + list(extra)

    # SIGKILL of a random rank at a random step (the seed is printed to replay a failure).
    seed = int(os.environ.get("DP_FAULT_SEED", time.time_ns() % 100000))
    rng = random.Random(seed)
    rank, step = rng.randrange(2), rng.randrange(1, 13)
    code, err, _, took = check.run(train("kill", "--fail-at-step", str(step), "--fail-rank",
                                         str(rank), "--fail-mode", "kill"), ranks=2, limit=90)
    check.record(code not in (None, 0),
                 f"SIGKILL of rank {rank} at step {step} (DP_FAULT_SEED={seed})",
                 f"exit {code} in {took:.1f} s")

    # Rank 1 stalls at step 3; rank 0 waits in the gradient allreduce. A 3 s timeout ends it.
    check.expect_error("stalled rank, --collective-timeout 3",
                       train("stall", "--fail-at-step", "3", "--fail-rank", "1", "--fail-mode",
                             "stall", "--collective-timeout", "3"),
                       EXIT["communication"], ["--collective-timeout", "no progress"],
                       ranks=2, one_line=False)
    # Rank 1 stalls in the start-up, before any step (as on a hung file system); rank 0 waits
    # in the broadcast of the initial weights. The start-up is watched too.
    check.expect_error("rank stalled in the start-up, --collective-timeout 3",
                       train("stall0", "--fail-at-step", "-1", "--fail-rank", "1", "--fail-mode",
                             "stall", "--collective-timeout", "3"),
                       EXIT["communication"], ["--collective-timeout", "no progress"],
                       ranks=2, one_line=False)

    def finished_epochs(run):
        with h5py.File(os.path.join(out, run, "metrics.h5"), "r") as f:
            return f["history/epoch"][:].tolist()

    def good_first_epoch(run, **options):
        code, err, _, took = check.run(train(run, epochs=1), **options)
        check.record(code == 0, f"{run}: first epoch", f"exit {code} in {took:.1f} s "
                     f"{err.strip()[-300:]}")
        saved = os.path.join(tmp, run + "-epoch1.h5")
        shutil.copy(os.path.join(out, run, "checkpoint.h5"), saved)
        return saved

    def after_failed_epoch2(run, saved, rows=(1, 2)):
        """metrics.h5 holds epochs 1 and 2 (`rows`); checkpoint.h5 is still epoch 1's, and
        loads."""
        epochs = finished_epochs(run)
        ckpt = os.path.join(out, run, "checkpoint.h5")
        same = filecmp.cmp(saved, ckpt, shallow=False)
        check.record(epochs == list(rows) and same, f"{run}: finished work kept",
                     f"metrics epochs {epochs}, checkpoint.h5 unchanged: {same}")
        code, err, _, _ = check.run(["eval", "--checkpoint", ckpt, "--data", data, "--threads",
                                     "1", "--output", os.path.join(tmp, run + "-eval.h5")])
        check.record(code == 0, f"{run}: the kept checkpoint evaluates", f"exit {code} {err[-200:]}")

    # Full disk while writing the epoch-2 checkpoint: a file-size limit above what metrics.h5
    # needs and below a checkpoint's size, with SIGXFSZ ignored so writes fail with EFBIG.
    saved = good_first_epoch("full")
    metrics_size = os.path.getsize(os.path.join(out, "full", "metrics.h5"))
    ckpt_size = os.path.getsize(saved)
    limit = max(2 * metrics_size, 256 * 1024)
    assert limit < ckpt_size, (metrics_size, ckpt_size)

    def small_disk():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    check.expect_error(f"full disk at checkpoint ({limit} byte file limit)",
                       train("full", "--resume", "auto"), EXIT["io"], ["checkpoint"], limit=90,
                       preexec_fn=small_disk,
                       # Open MPI's PMIx keeps its shared-memory store in a file the limit
                       # would stop; this run needs no shared memory.
                       env=dict(os.environ, PMIX_MCA_gds="hash"))
    after_failed_epoch2("full", saved)

    # Full disk while replacing metrics.h5 (its first replacement is the resume's record):
    # exit 6 naming it, every byte of it as it was, no .tmp left, the checkpoint as it was.
    saved = good_first_epoch("fullm")
    metrics = os.path.join(out, "fullm", "metrics.h5")
    with open(metrics, "rb") as f:
        before = f.read()
    limit = 4096
    check.expect_error(f"full disk at metrics.h5 ({limit} byte file limit)",
                       train("fullm", "--resume", "auto"), EXIT["io"], ["metrics.h5"], limit=90,
                       preexec_fn=small_disk, env=dict(os.environ, PMIX_MCA_gds="hash"))
    with open(metrics, "rb") as f:
        kept = f.read() == before
    check.record(kept and not os.path.exists(metrics + ".tmp"), "fullm: metrics.h5 byte for byte, "
                 "no .tmp", f"metrics.h5 unchanged: {kept}")
    after_failed_epoch2("fullm", saved, rows=(1,))

    # Full disk under `eval --output`, whose file HDF5 writes in place (then renamed): exit 6,
    # one line naming the file with the system's reason, not HDF5's whole stack of frames and
    # the failed write's call details (a 900-character line before), the earlier file whole.
    evaluated = os.path.join(tmp, "fullm-eval.h5")
    code, err, _, _ = check.run(["eval", "--checkpoint", saved, "--data", data, "--threads", "1",
                                 "--output", evaluated])
    check.record(code == 0, "an eval.h5 to keep", f"exit {code} {err[-300:]}")
    with open(evaluated, "rb") as f:
        before = f.read()
    err, _ = check.expect_error(
        f"full disk at eval --output ({limit} byte file limit)",
        ["eval", "--checkpoint", saved, "--data", data, "--threads", "1", "--output", evaluated],
        EXIT["io"], ["fullm-eval.h5.tmp", "File too large"], limit=90,
        preexec_fn=small_disk, env=dict(os.environ, PMIX_MCA_gds="hash"))
    line = next((l for l in err.splitlines() if l.startswith("dptrain")), "")
    with open(evaluated, "rb") as f:
        kept = f.read() == before
    check.record(len(line) < 300 and "errno" not in line and kept,
                 "eval: the full disk's line is short, the earlier eval.h5 byte for byte",
                 f"{len(line)} characters, unchanged: {kept}")

    # Read-only run directory: metrics.h5 is replaced whole, so the resume's first write
    # fails, before any training; metrics.h5 and the checkpoint stay as they were. As root,
    # permissions do not bind, so dptrain runs as nobody there.
    user = {"user": "nobody", "group": "nogroup", "extra_groups": []} if os.geteuid() == 0 else {}
    if os.geteuid() == 0:
        shutil.chown(out, "nobody")
    run_dir = os.path.join(out, "ro")
    saved = good_first_epoch("ro", **user)
    os.chmod(run_dir, 0o555)
    check.expect_error("read-only run directory", train("ro", "--resume", "auto"),
                       EXIT["io"], ["metrics.h5", "Permission denied"], limit=90, **user)
    os.chmod(run_dir, 0o755)
    after_failed_epoch2("ro", saved, rows=(1,))

    # Another user continues a run whose directory it may write but whose files (metrics.h5,
    # checkpoints, the lock) it may only read, as a colleague of the run's group: metrics.h5 is
    # read and replaced, the lock taken on a read-only descriptor.
    if os.geteuid() == 0:
        good_first_epoch("shared")
        shutil.chown(os.path.join(out, "shared"), "nobody")
        code, err, _, took = check.run(train("shared", "--resume", "auto"), limit=90, **user)
        check.record(code == 0 and finished_epochs("shared") == [1, 2],
                     "another user continues a run it may only read the files of",
                     f"exit {code} in {took:.1f} s {err.strip()[-300:]}")

    # A read-only output directory from the start: refused before any training.
    locked = os.path.join(tmp, "locked")
    os.makedirs(locked, mode=0o555)
    os.chmod(locked, 0o555)
    check.expect_error("read-only --output-dir", train("x", output=locked), EXIT["io"],
                       ["locked"], limit=60, **user)

check.finish()
