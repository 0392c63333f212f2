"""dptrain-report on bad input: a missing directory or file, a file that is not HDF5, an HDF5
file that is not a metrics file, an empty history, a truncated file, a run that crashed after
two epochs, inconsistent final metrics, a NaN training loss in an epoch with steps done, bad
options (non-finite numbers, projection inputs that overflow), an unwritable output folder, a
file that cannot be replaced (its .tmp name taken; a write that fails midway) leaving the earlier
file whole;
a baseline that trained no images; an epoch whose steps were all skipped reports, a superseded
history reports into its own folder and under its own name, runs given as "." and ".." each get
their own folder, and names with "$" are drawn as written. Each gives
one clear line on stderr naming the file, the documented exit code, and never a traceback; the
crashed run still gets its curves.

usage: test_report_bad_input.py <dptrain-report>"""
import fcntl
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile

import h5py

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from report_fixtures import (check, config, final_from_confusion, finish, history_rows,  # noqa
                             png_complete, png_size, run_report, svg_ok, svg_texts,
                             write_metrics)

TOOL = sys.argv[1]
EXIT_USAGE, EXIT_DATA, EXIT_OUTPUT = 2, 3, 6
CONFUSION = [[3, 1], [0, 4]]


def expect_error(label, args, code, *fragments):
    proc = run_report(TOOL, *args)
    err = proc.stderr.strip().splitlines()
    ok = check(proc.returncode == code, f"{label}: exit {code} (got {proc.returncode})")
    check("Traceback" not in proc.stderr, f"{label}: no traceback")
    check(len(err) == 1, f"{label}: one line on stderr (got {len(err)})")
    last = err[-1] if err else ""
    print(f"     stderr: {last}")
    check(last.startswith("dptrain-report: error: ") and all(f in last for f in fragments),
          f"{label}: message names {fragments}")
    if not ok:
        print(proc.stdout, proc.stderr)
    return proc


with tempfile.TemporaryDirectory() as tmp:
    def run_path(name):
        return os.path.join(tmp, name)

    def metrics_path(name):
        return os.path.join(tmp, name, "metrics.h5")

    good_final = final_from_confusion(CONFUSION, ["no", "yes"])
    write_metrics(metrics_path("good"), history_rows(3), config("good"), good_final)

    missing = run_path("no-such-run")
    expect_error("missing directory", [missing], EXIT_DATA, missing, "no such run directory")
    fifo = os.path.join(tmp, "named.pipe")
    os.mkfifo(fifo)
    expect_error("a named pipe", [fifo], EXIT_DATA, fifo, "not a run directory or a regular file")

    os.makedirs(run_path("empty-dir"))
    expect_error("directory without metrics.h5", [run_path("empty-dir")], EXIT_DATA,
                 metrics_path("empty-dir"), "missing")

    os.makedirs(run_path("text"))
    with open(metrics_path("text"), "w") as f:
        f.write("epoch,loss\n1,2.3\n")
    expect_error("not an HDF5 file", [run_path("text")], EXIT_DATA, metrics_path("text"),
                 "not an HDF5 file")

    os.makedirs(run_path("dataset"))
    with h5py.File(metrics_path("dataset"), "w") as f:
        f.attrs["format"] = "dptrain-dataset"
    expect_error("an HDF5 file of another kind", [run_path("dataset")], EXIT_DATA,
                 metrics_path("dataset"), "not a dptrain metrics file", "dptrain-dataset")

    write_metrics(metrics_path("empty-history"), {k: [] for k in history_rows(1)},
                  config("empty-history"))
    expect_error("empty history", [run_path("empty-history")], EXIT_DATA,
                 metrics_path("empty-history"), "empty history")

    write_metrics(metrics_path("no-field"), history_rows(2), config("no-field"), good_final)
    with h5py.File(metrics_path("no-field"), "a") as f:
        del f["history/time_comm"]
    expect_error("a history field missing", [run_path("no-field")], EXIT_DATA,
                 metrics_path("no-field"), "/history/time_comm missing")

    bad_final = final_from_confusion(CONFUSION, ["no", "yes"])
    bad_final["support"] = [4, 5]
    write_metrics(metrics_path("bad-support"), history_rows(2), config("bad-support"),
                  bad_final)
    expect_error("support disagreeing with the confusion matrix", [run_path("bad-support")],
                 EXIT_DATA, metrics_path("bad-support"), "/final/support")

    bad_final = final_from_confusion(CONFUSION, ["no", "yes", "maybe"])
    write_metrics(metrics_path("bad-names"), history_rows(2), config("bad-names"), bad_final)
    expect_error("class names not matching the matrix", [run_path("bad-names")], EXIT_DATA,
                 metrics_path("bad-names"), "confusion_matrix has shape (2, 2)")

    # Rows dptrain writes that are not damage: an epoch whose every step was skipped as
    # non-finite (no training loss or accuracy), and, from versions before 2026-12-05, a failed
    # evaluation's NaN val_loss beside its val_acc.
    nan = float("nan")
    write_metrics(metrics_path("skipped"),
                  history_rows(3, train_loss=[2.0, nan, 1.0], train_acc=[0.5, nan, 0.6],
                               skipped_steps=[0, 10, 0], val_loss=[1.0, 1.1, nan]),
                  config("skipped"), good_final)
    proc = run_report(TOOL, run_path("skipped"), "--out", run_path("skipped-out"), "--params", "9")
    check(proc.returncode == 0 and proc.stderr == "",
          f"an all-skipped epoch and a NaN val_loss beside val_acc report ({proc.stderr})")
    write_metrics(metrics_path("half-skipped"),
                  history_rows(2, train_loss=[2.0, nan], skipped_steps=[0, 9]),
                  config("half-skipped"), good_final)
    expect_error("a NaN training loss in an epoch with steps done", [run_path("half-skipped")],
                 EXIT_DATA, metrics_path("half-skipped"), "/history/train_loss", "epoch 2")

    # A superseded history reported beside the current run: into its own folder, leaving the
    # run directory's report (the current run's) as it was.
    current = run_path("current")
    write_metrics(os.path.join(current, "metrics.h5"), history_rows(3), config("current"),
                  good_final)
    old_history = os.path.join(current, "metrics.superseded-20261205-101010.h5")
    write_metrics(old_history, history_rows(2), config("current"), good_final)
    first = run_report(TOOL, current)
    with open(os.path.join(current, "report.json")) as f:
        before = f.read()
    second = run_report(TOOL, old_history)
    aside = os.path.join(current, "metrics.superseded-20261205-101010-report", "report.json")
    with open(os.path.join(current, "report.json")) as f:
        after = f.read()
    epochs = json.load(open(aside))["history"]["epoch"] if os.path.exists(aside) else None
    check(first.returncode == 0 and second.returncode == 0 and before == after
          and epochs == [1, 2],
          f"superseded history: its own folder ({epochs}), the run's report intact "
          f"({first.stderr}{second.stderr})")

    # Every input is checked before the first file is written: a checkpoint cut short (its
    # parameters are counted for the projection) fails with nothing written for any run.
    for name in ("first", "cut"):
        write_metrics(metrics_path(name), history_rows(3), config(name), good_final)
    with open(os.path.join(run_path("cut"), "checkpoint.h5"), "wb") as f:
        f.write(b"\x89HDF\r\n\x1a\n" + bytes(992))
    out = run_path("cut-out")
    expect_error("a checkpoint cut short", [run_path("first"), run_path("cut"), "--out", out],
                 EXIT_DATA, "checkpoint.h5")
    check(not os.path.exists(out) and not os.path.exists(os.path.join(run_path("first"),
                                                                       "report.json")),
          "a checkpoint cut short: no output written for either run")

    # A run resumed on another number of ranks (2, then 1) and to a later epoch: no one rank
    # count, so no comparison (refused before anything is written) and no projection; its
    # planned epochs are the resumed job's.
    write_metrics(metrics_path("resumed"), history_rows(3), config("resumed", world_size=2,
                                                                  batch_size=64), good_final)
    with h5py.File(metrics_path("resumed"), "a") as f:
        entry = f.create_group("resumes/1")
        entry.attrs["world_size"] = "1"
        for key, value in config("resumed", world_size=1, batch_size=64, epochs=4).items():
            entry.require_group("config").attrs[key] = str(value)
    out = run_path("resumed-out")
    expect_error("--baseline beside a run resumed on other ranks",
                 ["--baseline", run_path("good"), run_path("resumed"), "--out", out], EXIT_USAGE,
                 metrics_path("resumed"), "resumed on another number of ranks (2, then 1)")
    check(not os.path.exists(out), "refused comparison: nothing written")
    proc = run_report(TOOL, run_path("resumed"), "--out", out, "--params", "9")
    planned = (json.load(open(os.path.join(out, "report.json")))["epochs_planned"]
               if proc.returncode == 0 else None)
    check(proc.returncode == 0 and "projection.md not written" in proc.stderr
          and not os.path.exists(os.path.join(out, "projection.md")) and planned == 4,
          f"a run resumed on other ranks alone: reported, no projection, 4 epochs planned "
          f"({planned}; {proc.stderr.strip()})")

    # A finished run only evaluated again on another number of ranks (resumed from its last
    # step, 3 epochs x 10): it trained on 2 ranks only, so it is compared as a 2-rank run.
    write_metrics(metrics_path("again"), history_rows(3), config("again", world_size=2,
                                                                batch_size=64), good_final)
    with h5py.File(metrics_path("again"), "a") as f:
        entry = f.create_group("resumes/1")
        entry.attrs["world_size"], entry.attrs["step"] = "1", "30"
        for key, value in config("again", world_size=1, batch_size=64).items():
            entry.require_group("config").attrs[key] = str(value)
    out = run_path("again-out")
    proc = run_report(TOOL, "--baseline", run_path("good"), run_path("again"), "--out", out,
                      "--params", "9")
    table = open(os.path.join(out, "comparison.md")).read() if proc.returncode == 0 else ""
    check(proc.returncode == 0 and "| again | 2 |" in table,
          f"a finished run evaluated again on 1 rank: compared as its 2-rank run "
          f"({proc.stderr.strip()[-300:]})")

    # Two runs of one name in different folders: each row names its folder too.
    write_metrics(metrics_path("twin"), history_rows(3), config("good", world_size=2,
                                                               batch_size=64), good_final)
    out = run_path("twin-out")
    proc = run_report(TOOL, "--baseline", run_path("good"), run_path("twin"), "--out", out,
                      "--params", "9")
    table = open(os.path.join(out, "comparison.md")).read() if proc.returncode == 0 else ""
    check(proc.returncode == 0
          and f"| good ({run_path('good')}) (baseline) | 1 |" in table
          and f"| good ({run_path('twin')}) | 2 |" in table,
          f"two runs named good: told apart by folder ({proc.stderr.strip()[-300:]}):\n{table}")

    # Truncated: the first half of a valid file (the superblock survives).
    os.makedirs(run_path("truncated"))
    with open(metrics_path("good"), "rb") as f:
        data = f.read()
    with open(metrics_path("truncated"), "wb") as f:
        f.write(data[:len(data) // 2])
    expect_error("truncated file", [run_path("truncated")], EXIT_DATA,
                 metrics_path("truncated"))

    # A bad run among good ones stops everything before anything is written.
    out = run_path("mixed-out")
    expect_error("one bad run among good ones", [run_path("good"), missing, "--out", out],
                 EXIT_DATA, missing)
    check(not os.path.exists(out), "nothing written when any input is bad")

    # Crashed after two of ten epochs: no /final. Curves and JSON written, exit 3.
    write_metrics(metrics_path("crashed"), history_rows(2), config("crashed", epochs=10))
    out = run_path("crashed-out")
    proc = expect_error("crashed run", [run_path("crashed"), "--out", out, "--params", "100"],
                        EXIT_DATA, metrics_path("crashed"), "no /final group",
                        "after 2 of 10 epochs", "no final evaluation")
    png = os.path.join(out, "training_curves.png")
    check(png_size(png) == (1200, 800) and png_complete(png)
          and svg_ok(os.path.join(out, "training_curves.svg")),
          "crashed run: training curves still written (1200x800 PNG, SVG)")
    with open(os.path.join(out, "report.json")) as f:
        doc = json.load(f)
    check(doc["final"] is None and doc["complete"] is False and doc["epochs_done"] == 2
          and doc["epochs_planned"] == 10, "crashed run: report.json says it has no final")
    check(not any(os.path.exists(os.path.join(out, n)) for n in (
        "confusion_matrix.png", "per_class_accuracy.png", "classification_report.txt")),
        "crashed run: no confusion matrix or classification report made up")
    # The same run while a job writes it (holding its directory's lock, as dptrain's rank 0
    # does): said to be running, not stopped.
    with open(os.path.join(run_path("crashed"), ".dptrain.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        expect_error("a run in progress", [run_path("crashed"), "--out", run_path("running-out"),
                                           "--params", "100"],
                     EXIT_DATA, "no /final group", "the run is running", "at 2 of 10 epochs")
    expect_error("the same run once its job has ended",
                 [run_path("crashed"), "--out", run_path("ended-out"), "--params", "100"],
                 EXIT_DATA, "the run stopped after 2 of 10 epochs")

    # A crash while appending an epoch leaves one field a row longer: warn, use the rest.
    write_metrics(metrics_path("ragged"), history_rows(3), config("ragged"), good_final)
    with h5py.File(metrics_path("ragged"), "a") as f:
        d = f["history/epoch"]
        d.resize((4,))
        d[3] = 4
    proc = run_report(TOOL, run_path("ragged"), "--out", run_path("ragged-out"), "--params", "9")
    check(proc.returncode == 0 and "warning" in proc.stderr and "using the first 3" in proc.stderr
          and "Traceback" not in proc.stderr, f"ragged history: warning, exit 0 ({proc.stderr})")
    with open(os.path.join(run_path("ragged-out"), "report.json")) as f:
        check(json.load(f)["history"]["epoch"] == [1, 2, 3], "ragged history: 3 epochs used")

    # Names with a "$" (matplotlib's math delimiter) are drawn as written, not parsed: an
    # unbalanced formula stopped the report after some files were written, a balanced one
    # drew another class name. matplotlib's own math stays: the log-scale LR axis of 6 halvings
    # labels its ticks 10^-1 and 10^-2 as formulas, which must not show as source text.
    dollar_final = final_from_confusion(CONFUSION, ["$x^$", "$\\alpha$"])
    write_metrics(metrics_path("dollar"), history_rows(6), config("cost$x^$"), dollar_final)
    proc = run_report(TOOL, run_path("dollar"), "--params", "9")
    svg = os.path.join(run_path("dollar"), "confusion_matrix.svg")
    texts = svg_texts(svg) if os.path.exists(svg) else []
    check(proc.returncode == 0 and "$x^$" in texts and "$\\alpha$" in texts
          and any("cost$x^$" in t for t in texts),
          f"names with $: drawn as written ({proc.returncode}, {proc.stderr.strip()})")
    svg = os.path.join(run_path("dollar"), "training_curves.svg")
    curves = svg_texts(svg) if os.path.exists(svg) else ["missing"]
    check(not any("mathdefault" in t or "$10" in t for t in curves)
          and any("cost$x^$" in t for t in curves),
          f"the log-scale LR ticks drawn as math, the run name as written: "
          f"{[t for t in curves if '$' in t or 'math' in t][:4]}")

    # A baseline whose every step was skipped trained no images: nothing to compare against.
    nan_rows = history_rows(2, train_loss=[nan, nan], train_acc=[nan, nan],
                            skipped_steps=[10, 10], images_per_sec=[0.0, 0.0])
    write_metrics(metrics_path("all-skipped"), nan_rows, config("all-skipped"), good_final)
    out = run_path("all-skipped-out")
    expect_error("a baseline that trained no images",
                 ["--baseline", run_path("all-skipped"), run_path("good"), "--out", out],
                 EXIT_DATA, metrics_path("all-skipped"), "trained no images")
    check(not os.path.exists(out), "a baseline that trained no images: nothing written")

    # Runs given as "." and "..": each still lands in --out/<its folder's name>/.
    out = run_path("dot-out")
    proc = subprocess.run([TOOL, ".", os.path.join("..", "first"), "--out", out, "--params", "9"],
                          cwd=run_path("good"), capture_output=True, text=True, timeout=120)
    check(proc.returncode == 0
          and sorted(os.listdir(out)) == ["first", "good"]
          and os.path.exists(os.path.join(out, "good", "report.json")),
          f"runs given as . and ..: one folder each under --out "
          f"({sorted(os.listdir(out)) if os.path.isdir(out) else None}; {proc.stderr.strip()})")

    # A superseded history compared with its own run: told apart by name.
    out = run_path("superseded-cmp")
    proc = run_report(TOOL, "--baseline", current, old_history, "--out", out, "--params", "9")
    table = open(os.path.join(out, "comparison.md")).read() if proc.returncode == 0 else ""
    check("| current (baseline) |" in table
          and "| current (metrics.superseded-20261205-101010.h5) |" in table,
          f"a superseded history beside its run: distinct names ({proc.stderr.strip()})")

    # Options.
    for option in ("--compute-ms", "--bandwidth-gbs", "--latency-us"):
        expect_error(f"{option} inf", [run_path("good"), option, "inf"], EXIT_USAGE,
                     option, "finite")
    out = run_path("overflow-out")
    expect_error("projection inputs that overflow",
                 [run_path("good"), "--bandwidth-gbs", "1e-320", "--params", "9", "--out", out],
                 EXIT_USAGE, "--bandwidth-gbs", "overflows")
    check(not os.path.exists(out), "projection inputs that overflow: nothing written")
    expect_error("no run given", [], EXIT_USAGE, "RUN")
    expect_error("an unknown option", [run_path("good"), "--bogus"], EXIT_USAGE, "--bogus")
    expect_error("negative --skip-epochs", [run_path("good"), "--skip-epochs", "-1"], EXIT_USAGE,
                 "--skip-epochs")
    expect_error("--skip-epochs past the run", [run_path("good"), "--skip-epochs", "3"],
                 EXIT_USAGE, metrics_path("good"), "--skip-epochs 3")
    expect_error("--gpus below 2", [run_path("good"), "--gpus", "1,2"], EXIT_USAGE, "--gpus")
    expect_error("--baseline alone", [run_path("good"), "--baseline", run_path("good")],
                 EXIT_USAGE, "--baseline needs at least one other run")
    write_metrics(metrics_path("no-world"), history_rows(2),
                  {"run-name": "no-world", "batch-size": 8, "epochs": 2}, good_final)
    expect_error("a comparison run without world-size",
                 [run_path("no-world"), "--baseline", run_path("good"), "--params", "5",
                  "--out", run_path("no-world-out")], EXIT_DATA,
                 metrics_path("no-world"), "world-size")

    # Output that cannot be written: --out below a regular file.
    blocker = run_path("a-file")
    with open(blocker, "w") as f:
        f.write("x")
    expect_error("unwritable output folder", [run_path("good"), "--out",
                                              os.path.join(blocker, "sub")],
                 EXIT_OUTPUT, os.path.join(blocker, "sub"), "cannot create")

    # A file that cannot be replaced: report.json's temporary name taken (another report, or a
    # killed one) is refused (exit 6) naming it and left alone, before the first file is
    # written (a report's files are never some of this one's beside an earlier one's); once it
    # is gone, the files are replaced (new files) with the earlier ones' permissions.
    out = run_path("rewrite-out")
    proc = run_report(TOOL, run_path("good"), "--out", out)
    check(proc.returncode == 0, f"first report: exit 0 ({proc.stderr})")
    report_json = os.path.join(out, "report.json")
    curves = os.path.join(out, "training_curves.png")
    with open(report_json, "rb") as f:
        earlier = f.read()
    os.chmod(curves, 0o640)
    curves_inode = os.stat(curves).st_ino
    os.makedirs(report_json + ".tmp/blocker")
    expect_error("report.json's .tmp taken", [run_path("good"), "--out", out], EXIT_OUTPUT,
                 report_json + ".tmp", "exists")
    with open(report_json, "rb") as f:
        check(f.read() == earlier, "the earlier report.json is whole")
    check(os.stat(curves).st_ino == curves_inode,
          "nothing written: the curves are still the earlier report's")
    check(os.path.isdir(report_json + ".tmp/blocker"), "the taken .tmp is left as it was")
    shutil.rmtree(report_json + ".tmp")
    proc = run_report(TOOL, run_path("good"), "--out", out)
    check(proc.returncode == 0 and os.stat(curves).st_ino != curves_inode,
          f"the .tmp gone, the curves are written anew (renamed in): exit {proc.returncode}")
    check(os.stat(curves).st_mode & 0o777 == 0o640,
          f"a replaced figure keeps its permissions ({oct(os.stat(curves).st_mode & 0o777)})")

    # A write that fails midway (a 1 KiB file size limit: the first figure's PNG cannot be
    # written whole): exit 6, its .tmp removed, the earlier figure whole.
    with open(curves, "rb") as f:
        earlier_curves = f.read()
    proc = subprocess.run(
        [TOOL, run_path("good"), "--out", out], capture_output=True, text=True, timeout=120,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (1024, 1024)))
    check(proc.returncode == EXIT_OUTPUT and "cannot write" in proc.stderr
          and "Traceback" not in proc.stderr,
          f"a write that fails midway: exit {EXIT_OUTPUT} ({proc.returncode}: {proc.stderr.strip()})")
    with open(curves, "rb") as f:
        check(f.read() == earlier_curves, "the earlier figure is whole")
    check(not [n for n in os.listdir(out) if n.endswith(".tmp")],
          f"no .tmp left: {sorted(os.listdir(out))}")

    # A good run still works beside all this.
    proc = run_report(TOOL, run_path("good"), "--out", run_path("good-out"), "--params", "9")
    check(proc.returncode == 0 and proc.stderr == "", f"good run: exit 0 ({proc.stderr})")
    shutil.rmtree(run_path("good-out"))

finish()
