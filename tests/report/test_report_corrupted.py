"""dptrain-report on a corrupted history: a metrics.h5 whose /history datasets carry Fletcher-32
checksums (as dptrain writes them) with one byte flipped inside a row's chunk is refused with
one line naming the file, the dataset and the checksum mismatch (exit 3), never plotted, and so
is a flip in /final/confusion_matrix or /steps/lr, and a damaged attribute message of /config
(h5py's RuntimeError); the same file unflipped reports normally.

usage: test_report_corrupted.py <dptrain-report>"""
import os
import random
import shutil
import sys
import tempfile

import h5py
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from report_fixtures import (check, config, final_from_confusion, finish, history_rows,  # noqa
                             run_report, write_metrics)

TOOL = sys.argv[1]
EXIT_DATA = 3
FLIPS = 12


def checksum_history(path):
    """Rewrites every /history dataset chunked with Fletcher-32, as metrics_writer.cpp does."""
    with h5py.File(path, "r+") as f:
        for name in list(f["history"].keys()):
            values = f["history"][name][()]
            del f["history"][name]
            f["history"].create_dataset(name, data=values, chunks=(2,), maxshape=(None,),
                                        fletcher32=True)


def flip_in_chunk(path, dataset, rng):
    with h5py.File(path, "r") as f:
        ds = f[dataset]
        info = ds.id.get_chunk_info(rng.randrange(ds.id.get_num_chunks()))
    offset = info.byte_offset + rng.randrange(info.size)
    with open(path, "r+b") as g:
        g.seek(offset)
        byte = g.read(1)[0]
        g.seek(offset)
        g.write(bytes([byte ^ rng.randrange(1, 256)]))


def refused(run, says, what):
    """The report of RUN fails with one line naming the run and saying SAYS, exit 3, and
    plots nothing."""
    proc = run_report(TOOL, run)
    err = proc.stderr.strip().splitlines()
    last = err[-1] if err else ""
    check(proc.returncode == EXIT_DATA and len(err) == 1 and "Traceback" not in proc.stderr
          and says in last and run in last,
          f"{what}: one line, exit 3 (got {proc.returncode}: {last})")
    check(not os.path.exists(os.path.join(run, "training_curves.png")), f"{what}: nothing plotted")


with tempfile.TemporaryDirectory() as tmp:
    good = os.path.join(tmp, "good", "metrics.h5")
    write_metrics(good, history_rows(5), config("good"),
                  final_from_confusion([[3, 1], [0, 4]], ["no", "yes"]))
    checksum_history(good)
    proc = run_report(TOOL, os.path.dirname(good))
    check(proc.returncode == 0, f"checksummed history reports (exit {proc.returncode}: "
          f"{proc.stderr.strip()})")
    rng = random.Random(7)
    fields = ["epoch", "train_loss", "val_acc", "lr", "images_per_sec", "time_comm"]
    for i in range(FLIPS):
        field = fields[i % len(fields)]
        run = os.path.join(tmp, f"bad{i}")
        os.makedirs(run)
        shutil.copy(good, os.path.join(run, "metrics.h5"))
        flip_in_chunk(os.path.join(run, "metrics.h5"), f"history/{field}", rng)
        proc = run_report(TOOL, run)
        err = proc.stderr.strip().splitlines()
        last = err[-1] if err else ""
        check(proc.returncode == EXIT_DATA and len(err) == 1 and "Traceback" not in proc.stderr
              and f"/history/{field}: checksum mismatch" in last and run in last,
              f"flip {i} in /history/{field}: one line, exit 3 (got {proc.returncode}: {last})")
        check(not os.path.exists(os.path.join(run, "training_curves.png")),
              f"flip {i}: nothing plotted")
    # The final evaluation checksummed too (dptrain writes every dataset so): a flip there is
    # named as the history's are.
    run = os.path.join(tmp, "bad_final")
    os.makedirs(run)
    shutil.copy(good, os.path.join(run, "metrics.h5"))
    with h5py.File(os.path.join(run, "metrics.h5"), "r+") as f:
        values = f["final/confusion_matrix"][()]
        del f["final/confusion_matrix"]
        f["final"].create_dataset("confusion_matrix", data=values, chunks=values.shape,
                                  fletcher32=True)
    flip_in_chunk(os.path.join(run, "metrics.h5"), "final/confusion_matrix", rng)
    refused(run, "/final/confusion_matrix: checksum mismatch", "a flip in /final/confusion_matrix")

    # /steps, whose LR the report draws per step: a flip there refuses the file too (it was
    # drawn per epoch with a warning).
    run = os.path.join(tmp, "bad_steps")
    os.makedirs(run)
    shutil.copy(good, os.path.join(run, "metrics.h5"))
    with h5py.File(os.path.join(run, "metrics.h5"), "r+") as f:
        step_epoch = np.repeat(f["history/epoch"][()], 4)  # 4 steps an epoch
        steps = f.require_group("steps")
        for name in ("epoch", "lr"):
            if name in steps:
                del steps[name]
        steps.create_dataset("epoch", data=step_epoch, chunks=(4,), fletcher32=True)
        steps.create_dataset("lr", data=np.linspace(0.1, 0.01, len(step_epoch)), chunks=(4,),
                             fletcher32=True)
    flip_in_chunk(os.path.join(run, "metrics.h5"), "steps/lr", rng)
    refused(run, "/steps/lr: checksum mismatch", "a flip in /steps/lr")

    # Metadata: one of /config's attribute messages with a bad version byte (the byte 8 before
    # its name, in HDF5's version-1 attribute message), which h5py reports as a RuntimeError
    # while it lists the attributes.
    run = os.path.join(tmp, "bad_config")
    os.makedirs(run)
    bad_config = os.path.join(run, "metrics.h5")
    shutil.copy(good, bad_config)
    marker = "attribute_marker_for_the_test"
    with h5py.File(bad_config, "r+") as f:
        f["config"].attrs[marker] = "x"
    data = open(bad_config, "rb").read()
    at = data.index(marker.encode() + b"\0") - 8
    with open(bad_config, "r+b") as g:
        g.seek(at)
        g.write(bytes([data[at] ^ 0x5A]))
    refused(run, "unreadable", "a bad attribute message in /config")
finish()
