"""dptrain-report on real runs: `dptrain train` on a tiny generated dataset, 1 rank and 2 ranks
(mpirun), a few steps an epoch. Every number in the text, JSON and Markdown outputs is checked
against the HDF5 files, computed here independently (exact fractions for the classification
metrics); every figure is a complete PNG of its expected size and its SVG parses.

usage: test_report_real_run.py <dptrain> <dptrain-report> <mpiexec>"""
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
from fractions import Fraction

import h5py
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "comm"))
from report_fixtures import (check, finish, png_complete, png_size, run_report, svg_ok,  # noqa
                             svg_texts)
from tiny_dataset import mpirun_command, text_attrs, write_tiny_dataset  # noqa: E402


DPTRAIN, TOOL, MPIEXEC = sys.argv[1:4]
FIGURE_PIXELS = {"training_curves": (1200, 800), "confusion_matrix": (900, 750),
                 "confusion_matrix_normalized": (900, 750), "per_class_accuracy": (800, 600)}


def train(args, ranks):
    command = [DPTRAIN, "train"] + args
    if ranks > 1:
        command = mpirun_command(MPIEXEC, ranks, command)
    proc = subprocess.run(command, capture_output=True, text=True, timeout=240)
    check(proc.returncode == 0, f"dptrain train on {ranks} rank(s) exits 0 "
          f"(got {proc.returncode}: {proc.stderr[-500:]})")


def history(path):
    with h5py.File(path) as f:
        return {k: f["history"][k][:] for k in f["history"]}, text_attrs(f["config"])


def fmt_share(seconds, total):
    return f"{seconds:.2f} ({100 * seconds / total:.1f}%)"


with tempfile.TemporaryDirectory() as tmp:
    data = os.path.join(tmp, "tiny.h5")
    write_tiny_dataset(data)
    runs = os.path.join(tmp, "output")
    common = ["--data", data, "--arch", "resnet8", "--epochs", "3", "--batch-size", "16",
              "--threads", "1", "--max-steps-per-epoch", "5", "--eval-every", "2",
              "--output-dir", runs, "--log-every", "100"]
    train(common + ["--run-name", "base"], 1)
    train(common + ["--run-name", "ddp2"], 2)
    base_dir, ddp_dir = os.path.join(runs, "base"), os.path.join(runs, "ddp2")

    out = os.path.join(tmp, "report")
    proc = run_report(TOOL, "--baseline", base_dir, ddp_dir, "--out", out)
    print(proc.stdout, proc.stderr)
    check(proc.returncode == 0 and proc.stderr == "",
          f"report on the real runs: exit 0, quiet stderr (got {proc.returncode})")

    for name, run_dir in (("base", base_dir), ("ddp2", ddp_dir)):
        metrics = os.path.join(run_dir, "metrics.h5")
        hist, cfg = history(metrics)
        with h5py.File(metrics) as f:
            confusion = f["final/confusion_matrix"][:].tolist()
            names = [n.decode() if isinstance(n, bytes) else n for n in f["final/class_names"][:]]
            stored = {k: f["final"][k][:] for k in ("precision", "recall", "f1")}
            accuracy_attr = float(f["final"].attrs["accuracy"])
        k = len(names)
        directory = os.path.join(out, name)

        # Classification report: every number from exact fractions of the confusion matrix,
        # which must also agree with what dptrain stored.
        support = [sum(r) for r in confusion]
        predicted = [sum(confusion[t][p] for t in range(k)) for p in range(k)]
        fractions = []
        for c in range(k):
            tp = confusion[c][c]
            fractions.append((Fraction(tp, predicted[c]) if predicted[c] else Fraction(0),
                              Fraction(tp, support[c]) if support[c] else Fraction(0),
                              Fraction(2 * tp, support[c] + predicted[c])
                              if support[c] + predicted[c] else Fraction(0)))
        # Each a quotient of two counts, correctly rounded: stored exactly as these fractions,
        # so report.json's numbers (the same quotients) equal the file's.
        check(all(float(fr[i]) == stored[key][c] for c, fr in enumerate(fractions)
                  for i, key in enumerate(("precision", "recall", "f1"))),
              f"{name}: dptrain's stored precision/recall/f1 are the confusion matrix's fractions")
        total = sum(support)
        expected = ["" + " " * 13 + " precision    recall  f1-score   support", ""]
        for c, (p, r, f1) in enumerate(fractions):
            expected.append(f"{names[c]:>12}  {float(p):9.2f} {float(r):9.2f} {float(f1):9.2f} "
                            f"{support[c]:9d}")
        expected.append("")
        accuracy = Fraction(sum(confusion[c][c] for c in range(k)), total)
        expected.append(f"{'accuracy':>12}  {'':9} {'':9} {float(accuracy):9.2f} {total:9d}")
        macro = [sum(fr[i] for fr in fractions) / k for i in range(3)]
        weighted = [sum(fr[i] * s for fr, s in zip(fractions, support)) / total for i in range(3)]
        for label, values in (("macro avg", macro), ("weighted avg", weighted)):
            expected.append(f"{label:>12}  " + " ".join(f"{float(v):9.2f}" for v in values)
                            + f" {total:9d}")
        with open(os.path.join(directory, "classification_report.txt")) as f:
            text = f.read()
        check(text == "\n".join(expected) + "\n",
              f"{name}: classification report, every number:\n{text}")

        # report.json: the history as stored (NaN -> null), final metrics.
        with open(os.path.join(directory, "report.json")) as f:
            doc = json.load(f)
        check(all(doc["history"][key] == [None if math.isnan(v) else (int(v) if key in (
            "epoch", "steps", "skipped_steps") else float(v)) for v in hist[key]]
            for key in hist) and len(doc["history"]) == len(hist) >= 19,
            f"{name}: report.json holds every /history field exactly")
        check(doc["history"]["val_acc"][0] is None and doc["history"]["val_acc"][1] is not None,
              f"{name}: epoch 1 not evaluated (--eval-every 2) shows as null")
        check(doc["config"] == {key: str(v) for key, v in cfg.items()},
              f"{name}: report.json holds the /config attributes")
        check(doc["final"]["confusion_matrix"] == confusion
              and doc["final"]["accuracy"] == accuracy_attr
              and doc["final"]["class_names"] == names, f"{name}: report.json final metrics")

        for stem, size in FIGURE_PIXELS.items():
            png = os.path.join(directory, stem + ".png")
            check(png_size(png) == size and png_complete(png),
                  f"{name}: {stem}.png is {size[0]}x{size[1]} (got {png_size(png)})")
            check(svg_ok(os.path.join(directory, stem + ".svg")), f"{name}: {stem}.svg parses")
        texts = svg_texts(os.path.join(directory, "confusion_matrix_normalized.svg"))
        check(all(n in texts for n in names), f"{name}: every class name on the heatmap")
        # /steps holds every step's LR: the panel draws them, not one point an epoch.
        check("Learning rate (every step)" in svg_texts(
            os.path.join(directory, "training_curves.svg")),
            f"{name}: the learning-rate panel draws every step's LR")

    # comparison.md from the two histories, computed here.
    rows = {}
    base_ips = None
    for name, run_dir in (("base", base_dir), ("ddp2", ddp_dir)):
        hist, cfg = history(os.path.join(run_dir, "metrics.h5"))
        epochs = len(hist["epoch"])
        train_each = [hist["epoch_time"][e] - hist["time_eval"][e] for e in range(epochs)]
        train_time = sum(train_each)
        images = sum(hist["images_per_sec"][e] * train_each[e] for e in range(epochs))
        ips = images / train_time
        base_ips = base_ips or ips
        ranks = int(cfg["world-size"])
        compute = sum(hist["time_forward"][e] + hist["time_backward"][e]
                      + hist["time_optimizer"][e] for e in range(epochs))
        exposed = sum(hist["time_comm"][e] - hist["time_comm_hidden"][e] for e in range(epochs))
        hidden = sum(hist["time_comm_hidden"][e] for e in range(epochs))
        data_wait = sum(hist["time_data"][e] for e in range(epochs))
        with h5py.File(os.path.join(run_dir, "metrics.h5")) as f:
            acc = float(f["final"].attrs["accuracy"])
        speedup = ips / base_ips
        label = "base (baseline)" if name == "base" else name
        rows[name] = (f"| {label} | {ranks} | {epochs} | {train_time:.2f} | "
                      f"{train_time / epochs:.2f} | {ips:.1f} | {speedup:.2f} | {ranks:.2f} | "
                      f"{100 * speedup / ranks:.1f}% | {100 * acc:.2f}% | "
                      f"{fmt_share(compute, train_time)} | {fmt_share(exposed, train_time)} | "
                      f"{hidden:.2f} | {fmt_share(data_wait, train_time)} |")
        if name == "ddp2":
            check(ranks == 2 and exposed + hidden > 0, "the 2-rank run spent time in allreduce")
        if name == "base":
            base_compute_per_step = compute / sum(hist["steps"])
    with open(os.path.join(out, "comparison.md")) as f:
        table = [line for line in f.read().splitlines() if line.startswith("| base")
                 or line.startswith("| ddp2")]
    check(table == [rows["base"], rows["ddp2"]],
          "comparison.md rows:\n" + "\n".join(table) + "\nexpected:\n" + rows["base"] + "\n"
          + rows["ddp2"])
    check(png_size(os.path.join(out, "scaling.png")) == (700, 500)
          and svg_ok(os.path.join(out, "scaling.svg")), "scaling plot 700x500, SVG parses")

    # projection.md of the baseline: G counted in the checkpoint, defaults 12.5 GB/s, 5 us.
    with h5py.File(os.path.join(base_dir, "checkpoint.h5")) as f:
        params = sum(int(np.prod(f["params"][n].shape)) for n in f["params"])
    with open(os.path.join(out, "base", "projection.md")) as f:
        projection = f.read()
    check(f"G = {4 * params:,} bytes of gradients ({params:,} parameters counted in" in projection,
          f"projection: gradient bytes from the checkpoint's {params} parameters")
    check(f"t_compute = {1e3 * base_compute_per_step:.3f} ms per step (measured in run base"
          in projection, "projection: measured compute per step")
    lines = [line for line in projection.splitlines() if line.startswith("| ")
             and line[2].isdigit()]
    expected = []
    for n in (1, 2, 4, 8, 16, 32, 64):
        t_ar = 0.0 if n == 1 else 2 * (n - 1) / n * 4 * params / 12.5e9 + 2 * (n - 1) * 5e-6
        step = base_compute_per_step + t_ar
        speedup = n * 16 / step / (16 / base_compute_per_step)
        expected.append(f"| {n} | {16 * n} | {1e3 * t_ar:.3f} | {1e3 * step:.3f} | "
                        f"{n * 16 / step:.1f} | {speedup:.2f} | {100 * speedup / n:.1f}% | "
                        f"{100 * base_compute_per_step / max(base_compute_per_step, t_ar):.1f}% |")
    check(lines == expected, "projection rows:\n" + "\n".join(lines))

    # An eval file given to the report: told apart by its format attribute, refused in one line.
    evaluated = os.path.join(tmp, "eval.h5")
    proc = subprocess.run([DPTRAIN, "eval", "--checkpoint", os.path.join(base_dir, "checkpoint.h5"),
                           "--data", data, "--threads", "1", "--output", evaluated],
                          capture_output=True, text=True, timeout=120)
    with h5py.File(evaluated) as f:
        attrs = text_attrs(f)
    check(proc.returncode == 0 and attrs.get("format") == "dptrain-eval"
          and int(attrs.get("format_version", 0)) == 1,
          f"dptrain eval's file says what it is: {attrs.get('format')} {proc.stderr[-300:]}")
    proc = run_report(TOOL, evaluated, "--out", os.path.join(tmp, "eval-report"))
    check(proc.returncode == 3 and len(proc.stderr.strip().splitlines()) == 1
          and "an eval file (`dptrain eval`'s output), not a metrics file" in proc.stderr,
          f"the report refuses an eval file naming it so (exit {proc.returncode}: {proc.stderr})")

    # A class name corrupted on disk: string datasets carry no Fletcher-32 checksum, only
    # dptrain's digest attribute; dptrain verify (the oracle) and the report both refuse it.
    flipped = os.path.join(tmp, "flipped")
    shutil.copytree(base_dir, flipped)
    flipped_metrics = os.path.join(flipped, "metrics.h5")
    with h5py.File(flipped_metrics) as f:
        ds = f["final/class_names"]
        at = ds.id.get_offset()
        at = ds.id.get_chunk_info(0).byte_offset if at is None else at
    with open(flipped_metrics, "r+b") as g:
        g.seek(at)
        byte = g.read(1)[0]
        g.seek(at)
        g.write(bytes([byte ^ 0x01]))
    verify = subprocess.run([DPTRAIN, "verify", flipped_metrics], capture_output=True, text=True,
                            timeout=60)
    proc = run_report(TOOL, flipped, "--out", os.path.join(tmp, "flipped-report"))
    check(verify.returncode == 3 and proc.returncode == 3
          and len(proc.stderr.strip().splitlines()) == 1
          and "/final/class_names: checksum mismatch" in proc.stderr,
          f"a flipped byte in a class name: verify exit {verify.returncode}, report exit "
          f"{proc.returncode}: {proc.stderr.strip()}")

    # A run that ends inside an epoch (--stop-after-steps 7 at 5 steps an epoch): its learning
    # rate's last point at 7 / 5 = 1.4 epochs, by /steps' steps_per_epoch, not stretched to 2.
    train(common + ["--run-name", "cut", "--stop-after-steps", "7"], 1)
    sys.path.insert(0, os.path.dirname(os.path.abspath(TOOL)))
    from dptrain_report.load import load_run  # noqa: E402
    with h5py.File(os.path.join(runs, "cut", "metrics.h5")) as f:
        recorded = int(f["steps"].attrs.get("steps_per_epoch", 0))
    place, _ = load_run(os.path.join(runs, "cut")).step_lr
    check(recorded == 5 and len(place) == 7 and abs(place[-1] - 1.4) < 1e-12
          and abs(place[4] - 1.0) < 1e-12,
          f"a run stopped at step 7 of 5 an epoch: steps_per_epoch {recorded}, last LR point at "
          f"{place[-1] if len(place) else None} epochs (want 1.4)")

finish()
