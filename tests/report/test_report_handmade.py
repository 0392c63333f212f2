"""dptrain-report on hand-made metrics.h5 files with known contents: the classification report
text, report.json, comparison.md and projection.md are checked exactly against values worked
out by hand (comments) or with exact fractions here, and every figure's size and validity.

usage: test_report_handmade.py <dptrain-report>"""
import json
import math
import os
import sys
import tempfile
from fractions import Fraction

import h5py
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from report_fixtures import (check, config, final_from_confusion, finish, history_rows,  # noqa
                             png_complete, png_size, run_report, svg_ok, svg_texts, write_metrics)

TOOL = sys.argv[1]


def check_epoch_ticks():
    """An epoch axis ticks whole epochs only, a one-epoch run's too (MaxNLocator's integer
    mode falls back to fractions where the range holds fewer than two integers)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    sys.path.insert(0, os.path.dirname(os.path.realpath(TOOL)))
    from dptrain_report import figures
    for epochs in ([1], [1, 2], list(range(1, 31))):
        fig, ax = plt.subplots()
        ax.plot(epochs, [1.0] * len(epochs), marker="o")
        figures._epoch_axis(ax)
        fig.canvas.draw()
        low, high = ax.get_xlim()
        ticks = [t for t in ax.get_xticks() if low <= t <= high]
        plt.close(fig)
        check(ticks and all(float(t).is_integer() for t in ticks),
              f"{len(epochs)} epoch(s): whole-epoch ticks {ticks}")


def check_step_lr(tmp):
    """/steps/lr placed in epochs: step j of an epoch's n at epoch - 1 + j / n; a /steps whose
    fields do not pair up is left out with a warning (the panel then draws the epochs' LR)."""
    import numpy as np
    sys.path.insert(0, os.path.dirname(os.path.realpath(TOOL)))
    from dptrain_report import load
    path = os.path.join(tmp, "steps-run", "metrics.h5")
    write_metrics(path, history_rows(2), config("steps-run", epochs=2))
    for lr_values, paired in (([0.1, 0.2, 0.3, 0.4, 0.5], True), ([0.1, 0.2], False)):
        with h5py.File(path, "a") as f:
            if "steps" in f:
                del f["steps"]
            f.create_dataset("steps/epoch", data=np.array([1, 1, 1, 2, 2], dtype=np.float64))
            f.create_dataset("steps/lr", data=np.array(lr_values))
        run = load.load_run(os.path.dirname(path))
        if paired:
            place, lr = run.step_lr
            check(np.allclose(place, [1 / 3, 2 / 3, 1, 1.5, 2]) and list(lr) == lr_values,
                  f"every step's LR at its place in epochs ({list(place)})")
        else:
            check(run.step_lr is None and any("/steps" in w for w in run.warnings),
                  f"/steps fields that do not pair up are left out with a warning {run.warnings}")
    # --epochs 1.5: the second epoch is cut short after 2 of 4 steps, and ends at 1.5 (it was
    # stretched over a whole epoch, as a resume on more ranks' shorter epochs is).
    write_metrics(path, history_rows(2), config("steps-run", epochs=1.5))
    with h5py.File(path, "a") as f:
        f.create_dataset("steps/epoch", data=np.array([1, 1, 1, 1, 2, 2], dtype=np.float64))
        f.create_dataset("steps/lr", data=np.arange(6) / 10)
    place, _ = load.load_run(os.path.dirname(path)).step_lr
    check(np.allclose(place, [0.25, 0.5, 0.75, 1, 1.25, 1.5]),
          f"a fractional --epochs' last epoch ends at the fraction ({list(place)})")
    # That run resumed with --epochs 3: its cut epoch 2 stays a half (it was stretched to 2.0,
    # the rule reading --epochs of the last job only); a first epoch cut short (--epochs 0.5,
    # then 2) a half of the epoch after's; but a whole epoch of 2 steps, then epochs of 4 (a
    # resume at its end with more steps per epoch), keeps its own length.
    for first, epochs, want in (
            (1.5, [1, 1, 1, 1, 2, 2, 3, 3, 3, 3], [0.25, 0.5, 0.75, 1, 1.25, 1.5, 2.25, 2.5, 2.75, 3]),
            (0.5, [1, 1, 2, 2, 2, 2], [0.25, 0.5, 1.25, 1.5, 1.75, 2]),
            (1, [1, 1, 2, 2, 2, 2], [0.5, 1, 1.25, 1.5, 1.75, 2])):
        write_metrics(path, history_rows(epochs[-1]), config("steps-run", epochs=first))
        with h5py.File(path, "a") as f:
            f.create_dataset("steps/epoch", data=np.array(epochs, dtype=np.float64))
            f.create_dataset("steps/lr", data=np.arange(len(epochs)) / 10)
            f["steps"].attrs["steps_per_epoch"] = 4
            f.create_group("resumes/1/config").attrs["epochs"] = str(epochs[-1])
        place, _ = load.load_run(os.path.dirname(path)).step_lr
        check(np.allclose(place, want),
              f"--epochs {first} then {epochs[-1]}: each epoch's share ({list(place)})")
    # A job that only evaluated a finished run again trained nothing, told by its position (3
    # epochs done, where the rows end), not by step numbers, which a resume on fewer steps per
    # epoch counts anew (18 against /history's 8 + 6 + 6): a 2-rank re-evaluation of a 1-rank
    # run is no rank change, and the job that resumed at (1, 6) trained.
    write_metrics(path, history_rows(3, steps=[8, 6, 6]), config("steps-run", epochs=3))
    with h5py.File(path, "a") as f:
        f.create_dataset("steps/step", data=np.arange(1, 19, dtype=np.float64))
        for n, (step, at, world) in enumerate((("14", ("1", "6"), "1"), ("18", ("3", "0"), "2")),
                                              start=1):
            g = f.create_group(f"resumes/{n}")
            g.attrs["step"], g.attrs["world_size"] = step, world
            g.attrs["epochs_done"], g.attrs["step_in_epoch"] = at
    resumes = load.load_run(os.path.dirname(path)).resumes
    check([r.get("world-size") for r in resumes] == ["1"],
          f"a job resumed from the run's last step trained nothing ({resumes})")


# scikit-learn's own docstring example (y_true = [0, 1, 2, 2, 2], y_pred = [0, 0, 2, 2, 1]) and
# the text its documentation prints for it.
DOC_CONFUSION = [[1, 0, 0], [1, 0, 0], [0, 1, 2]]
DOC_NAMES = ["class 0", "class 1", "class 2"]
DOC_REPORT = """\
              precision    recall  f1-score   support

     class 0       0.50      1.00      0.67         1
     class 1       0.00      0.00      0.00         1
     class 2       1.00      0.67      0.80         3

    accuracy                           0.60         5
   macro avg       0.50      0.56      0.49         5
weighted avg       0.70      0.60      0.61         5
"""

# A class absent from truth and predictions, and a name longer than "weighted avg" (which sets
# the first column's width to 22). By hand: cat P 5/7 R 5/6 F1 10/13; dog P 3/4 R 3/6 F1 6/10;
# hippo P 4/5 R 4/4 F1 8/9; unicorn 0 (zero_division=0); accuracy 12/16; macro P 0.566 R 0.583
# F1 0.5645; weighted (by support 6, 6, 4, 0) P 0.749 R 0.75 F1 0.7357.
ABSENT_CONFUSION = [[5, 1, 0, 0], [2, 3, 1, 0], [0, 0, 4, 0], [0, 0, 0, 0]]
ABSENT_NAMES = ["cat", "dog", "hippopotamus-amphibius", "unicorn"]
ABSENT_REPORT = (
    "                        precision    recall  f1-score   support\n"
    "\n"
    "                   cat       0.71      0.83      0.77         6\n"
    "                   dog       0.75      0.50      0.60         6\n"
    "hippopotamus-amphibius       0.80      1.00      0.89         4\n"
    "               unicorn       0.00      0.00      0.00         0\n"
    "\n"
    "              accuracy                           0.75        16\n"
    "             macro avg       0.57      0.58      0.56        16\n"
    "          weighted avg       0.75      0.75      0.74        16\n")

# 2 tp / (support + predicted) = 2/16 = 0.125 exactly, printed "0.12" (round half to even of
# the exact value), as current scikit-learn computes F1 from the counts.
TIE_CONFUSION = [[1, 0, 4], [10, 4, 0], [0, 0, 5]]
TIE_NAMES = ["a", "b", "c"]

# CIFAR-10's names (long ones rotate on the x axis).
CIFAR_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
               "truck"]

FIGURES = ("training_curves", "confusion_matrix", "confusion_matrix_normalized",
           "per_class_accuracy")


def fraction_report_numbers(confusion):
    """Per-class (precision, recall, f1) as exact fractions, and the averages."""
    k = len(confusion)
    support = [sum(row) for row in confusion]
    predicted = [sum(confusion[t][p] for t in range(k)) for p in range(k)]
    rows = []
    for c in range(k):
        tp = confusion[c][c]
        precision = Fraction(tp, predicted[c]) if predicted[c] else Fraction(0)
        recall = Fraction(tp, support[c]) if support[c] else Fraction(0)
        f1 = Fraction(2 * tp, support[c] + predicted[c]) if support[c] + predicted[c] else 0
        rows.append((precision, recall, Fraction(f1)))
    total = sum(support)
    macro = tuple(sum(r[i] for r in rows) / k for i in range(3))
    weighted = tuple(sum(r[i] * s for r, s in zip(rows, support)) / total for i in range(3))
    accuracy = Fraction(sum(confusion[c][c] for c in range(k)), total)
    return rows, macro, weighted, accuracy, support


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def check_figures(directory, num_classes, label):
    expected = {"training_curves": (1200, 800),
                "confusion_matrix": CONFUSION_PIXELS[num_classes],
                "confusion_matrix_normalized": CONFUSION_PIXELS[num_classes],
                "per_class_accuracy": PER_CLASS_PIXELS[num_classes]}
    for stem, size in expected.items():
        png = os.path.join(directory, stem + ".png")
        svg = os.path.join(directory, stem + ".svg")
        check(os.path.exists(png) and png_size(png) == size and png_complete(png),
              f"{label}: {stem}.png is a complete PNG of {size[0]}x{size[1]} "
              f"(got {png_size(png) if os.path.exists(png) else 'no file'})")
        check(os.path.exists(svg) and svg_ok(svg), f"{label}: {stem}.svg parses as SVG")


# Pixel sizes at 100 dpi: confusion height max(6, 2.5 + 0.5 K) in (0.12 in a class past 20),
# width + 1.5 in; the per-class chart max(8, 1.5 + 0.6 K) in (0.15 past 20) by 6 in.
CONFUSION_PIXELS = {3: (750, 600), 4: (750, 600), 10: (900, 750), 30: (1520, 1370)}
PER_CLASS_PIXELS = {3: (800, 600), 4: (800, 600), 10: (800, 600), 30: (1500, 600)}


with tempfile.TemporaryDirectory() as tmp:
    # ------------------------------------------------------------------ three runs to compare
    # Baseline, 1 rank: epoch 1 slow (warm-up), 20 s with 1 s of evaluation at 50 images/s;
    # then 10 s (9 s training) at 100 images/s. Not evaluated in epoch 2 (NaN).
    nan = float("nan")
    base_history = history_rows(
        4, epoch_time=[20, 10, 10, 10], images_per_sec=[50, 100, 100, 100],
        val_loss=[2.0, nan, 1.5, 1.25], val_acc=[0.3, nan, 0.5, 0.6])
    write_metrics(os.path.join(tmp, "runs", "hm-base", "metrics.h5"), base_history,
                  config("hm-base", world_size=1, batch_size=64, epochs=4),
                  final_from_confusion(DOC_CONFUSION, DOC_NAMES))
    # 2 ranks: 8 s epochs then 6 s, 0.5 s evaluation; 100 then 180 images/s; comm 1.0 s per
    # epoch of which 0.4 s hidden behind backward.
    r2 = history_rows(4, epoch_time=[8, 6, 6, 6], time_eval=[0.5] * 4,
                      images_per_sec=[100, 180, 180, 180], time_data=[0.25] * 4,
                      time_forward=[1.5] * 4, time_backward=[2.6] * 4,
                      time_optimizer=[0.25] * 4, time_comm=[1.0] * 4,
                      time_comm_hidden=[0.4] * 4)
    write_metrics(os.path.join(tmp, "runs", "hm-2", "metrics.h5"), r2,
                  config("hm-2", world_size=2, batch_size=64, epochs=4,
                         **{"label-smoothing": "0.2"}),
                  final_from_confusion(ABSENT_CONFUSION, ABSENT_NAMES))
    r4 = history_rows(4, epoch_time=[5, 4, 4, 4], time_eval=[0.4] * 4,
                      images_per_sec=[140, 300, 300, 300], time_data=[0.1] * 4,
                      time_forward=[0.8] * 4, time_backward=[1.6] * 4,
                      time_optimizer=[0.1] * 4, time_comm=[1.2] * 4,
                      time_comm_hidden=[0.5] * 4)
    write_metrics(os.path.join(tmp, "runs", "hm-4", "metrics.h5"), r4,
                  config("hm-4", world_size=4, batch_size=64, epochs=4),
                  final_from_confusion([[2, 0, 0], [0, 2, 1], [0, 0, 3]], DOC_NAMES))
    runs = [os.path.join(tmp, "runs", n) for n in ("hm-base", "hm-2", "hm-4")]

    out = os.path.join(tmp, "all")
    proc = run_report(TOOL, "--baseline", runs[0], runs[1], runs[2], "--out", out,
                      "--params", "32000000", "--bandwidth-gbs", "10", "--latency-us", "10")
    print(proc.stdout, proc.stderr)
    check(proc.returncode == 0, f"three complete runs: exit 0 (got {proc.returncode})")
    check(proc.stderr == "", "nothing on stderr")

    # Classification reports: the exact text scikit-learn prints.
    check(read(os.path.join(out, "hm-base", "classification_report.txt")) == DOC_REPORT,
          "classification report = scikit-learn's documented output for its example")
    check(read(os.path.join(out, "hm-2", "classification_report.txt")) == ABSENT_REPORT,
          "classification report with an absent class and a 22-character name")

    # Comparison, all epochs counted. Baseline: 19 + 3 x 9 = 46 s of training, 950 + 3 x 900
    # = 3650 images, 79.3 images/s; compute (3 + 5 + 0.5) x 4 = 34 s (73.9%), data 2 s (4.3%).
    # 2 ranks: 7.5 + 3 x 5.5 = 24 s, 750 + 3 x 990 = 3720 images = 155.0/s, speedup
    # 155 / 79.348 = 1.95, efficiency 97.7%; compute 4.35 x 4 = 17.4 s (72.5%), exposed comm
    # 0.6 x 4 = 2.4 s (10.0%), hidden 1.6 s, data 1 s (4.2%). 4 ranks: 4.6 + 3 x 3.6 = 15.4 s,
    # 644 + 3 x 1080 = 3884 images = 252.2/s, speedup 3.18, efficiency 79.5%; compute 10 s
    # (64.9%), exposed 0.7 x 4 = 2.8 s (18.2%), hidden 2.0 s, data 0.4 s (2.6%).
    comparison = read(os.path.join(out, "comparison.md"))
    expected_rows = [
        "| hm-base (baseline) | 1 | 4 | 46.00 | 11.50 | 79.3 | 1.00 | 1.00 | 100.0% | 60.00% "
        "| 34.00 (73.9%) | 0.00 (0.0%) | 0.00 | 2.00 (4.3%) |",
        "| hm-2 | 2 | 4 | 24.00 | 6.00 | 155.0 | 1.95 | 2.00 | 97.7% | 75.00% "
        "| 17.40 (72.5%) | 2.40 (10.0%) | 1.60 | 1.00 (4.2%) |",
        "| hm-4 | 4 | 4 | 15.40 | 3.85 | 252.2 | 3.18 | 4.00 | 79.5% | 87.50% "
        "| 10.00 (64.9%) | 2.80 (18.2%) | 2.00 | 0.40 (2.6%) |",
    ]
    table = [line for line in comparison.splitlines() if line.startswith("| hm-")]
    check(table == expected_rows, "comparison.md rows, all epochs:\n" + "\n".join(table))
    check("All epochs count." in comparison, "comparison.md says all epochs count")
    # A run whose last epoch was cut short (--epochs 1.5): 9 + 4.5 = 13.5 s of training over
    # 15 steps of 10-step epochs is 9.00 s a whole epoch (it read 6.75, per history row).
    half = os.path.join(tmp, "runs", "hm-half")
    write_metrics(os.path.join(half, "metrics.h5"),
                  history_rows(2, steps=[10, 5], epoch_time=[10, 5.5]),
                  config("hm-half", world_size=1, batch_size=64, epochs=1.5),
                  final_from_confusion(DOC_CONFUSION, DOC_NAMES))
    proc = run_report(TOOL, "--baseline", runs[0], half, "--out", os.path.join(tmp, "half"))
    rows = [line for line in read(os.path.join(tmp, "half", "comparison.md")).splitlines()
            if line.startswith("| hm-half")] if proc.returncode == 0 else []
    check(len(rows) == 1 and rows[0].startswith("| hm-half | 1 | 2 | 13.50 | 9.00 | 100.0 |"),
          f"time/epoch of a cut-short last epoch counts its share of one ({rows} {proc.stderr})")
    # Its only epoch cut short (--epochs 0.5, --stop-after-steps): /steps' steps_per_epoch says
    # a whole one's steps, 5 steps in 4.5 s of 10-step epochs are 9.00 s an epoch (it read 4.50).
    with h5py.File(os.path.join(half, "metrics.h5"), "a") as f:
        for name in f["history"]:
            f["history"][name].resize((1,))
        f.create_dataset("steps/step", data=np.arange(1, 6, dtype=np.float64))
        f["steps"].attrs["steps_per_epoch"] = 10
        f["history/steps"][0] = 5
        f["history/epoch_time"][0] = 5.5
    proc = run_report(TOOL, "--baseline", runs[0], half, "--out", os.path.join(tmp, "part"))
    rows = [line for line in read(os.path.join(tmp, "part", "comparison.md")).splitlines()
            if line.startswith("| hm-half")] if proc.returncode == 0 else []
    check(len(rows) == 1 and rows[0].startswith("| hm-half | 1 | 1 | 4.50 | 9.00 |"),
          f"time/epoch of a run shorter than an epoch counts its share of one ({rows} "
          f"{proc.stderr})")
    # A run resumed mid-run with --tta 2: /final's level is not its first epochs' (0). The
    # report says so, report.json records it and the resumed job's options, the comparison
    # marks the accuracy (before: none of these).
    tta = os.path.join(tmp, "runs", "hm-tta")
    final = final_from_confusion(DOC_CONFUSION, DOC_NAMES)
    final["attrs"]["tta"] = 2
    write_metrics(os.path.join(tta, "metrics.h5"), history_rows(2),
                  config("hm-tta", epochs=2, tta=0), final)
    with h5py.File(os.path.join(tta, "metrics.h5"), "a") as f:
        f.create_group("resumes/1/config").attrs["tta"] = "2"
        f["resumes/1"].attrs["step"] = "10"
        f["resumes/1"].attrs["epochs_done"], f["resumes/1"].attrs["step_in_epoch"] = "1", "0"
    proc = run_report(TOOL, "--baseline", runs[0], tta, "--out", os.path.join(tmp, "tta"))
    rows = [line for line in read(os.path.join(tmp, "tta", "comparison.md")).splitlines()
            if line.startswith("| hm-tta")] if proc.returncode == 0 else []
    check(len(rows) == 1 and "| 60.00% (TTA 2) |" in rows[0]
          and "mix test-time augmentation levels (--tta 0 in /config, --tta 2 in /resumes/1, "
          "--tta 2 in /final)" in proc.stderr,
          f"a final evaluation of another --tta: marked and warned about ({rows} {proc.stderr})")
    proc = run_report(TOOL, tta)
    exported = json.loads(read(os.path.join(tta, "report.json"))) if proc.returncode == 0 else {}
    check((exported.get("final") or {}).get("tta") == 2
          and exported.get("resumes") == [{"tta": "2"}],
          f"report.json records the final evaluation's --tta and the resumed job's options "
          f"({exported.get('resumes')} {proc.stderr.strip()})")
    for stem in ("scaling",):
        png = os.path.join(out, stem + ".png")
        check(png_size(png) == (700, 500) and png_complete(png), "scaling.png is 700x500")
        check(svg_ok(os.path.join(out, stem + ".svg")), "scaling.svg parses")
        texts = " ".join(svg_texts(os.path.join(out, stem + ".svg")))
        check("Ranks (world size)" in texts and "Speedup over the baseline" in texts
              and "hm-4" in texts, "scaling plot has its axis labels and run names")

    # Projection for each run from --params 32,000,000 (G = 128 MB), B = 10 GB/s, 10 us.
    # Baseline, all epochs: t_compute = 34 s / 40 steps = 850 ms, per-rank batch 64.
    projection = read(os.path.join(out, "hm-base", "projection.md"))
    check(projection.startswith("# PROJECTION (a model, not a measurement)"),
          "projection.md is headed as a projection, not a measurement")
    check("t_compute = 850.000 ms per step (measured in run hm-base" in projection,
          "projection states the measured compute time per step")
    check("G = 128,000,000 bytes of gradients (--params 32,000,000 x 4 bytes (float32))"
          in projection, "projection states the gradient size and where it came from")
    check("B = 10 GB/s link bandwidth (--bandwidth-gbs), alpha = 10 us" in projection,
          "projection states bandwidth and latency")
    expected = []
    t_c = Fraction(85, 100)
    for n in (1, 2, 4, 8, 16, 32, 64):
        # Ring allreduce: 2(N-1)/N x 0.0128 s + 2(N-1) x 10 us.
        t_ar = Fraction(2 * (n - 1), n) * Fraction(128, 10000) + 2 * (n - 1) * Fraction(1, 100000)
        step = t_c + t_ar
        images = 64 * n / step
        speedup = images / (64 / t_c)
        expected.append(f"| {n} | {64 * n} | {float(1000 * t_ar):.3f} | {float(1000 * step):.3f} "
                        f"| {float(images):.1f} | {float(speedup):.2f} "
                        f"| {float(100 * speedup / n):.1f}% "
                        f"| {float(100 * t_c / max(t_c, t_ar)):.1f}% |")
    got = [line for line in projection.splitlines() if line[:3] in ("| 1", "| 2", "| 4", "| 8",
                                                                    "| 3", "| 6")]
    check(got == expected, "projection rows:\n" + "\n".join(got))
    # By hand for 64 GPUs: t_ar = 126/64 x 12.8 ms + 126 x 10 us = 25.2 + 1.26 = 26.46 ms.
    check(got[-1].startswith("| 64 | 4096 | 26.460 | 876.460 | 4673.3 | 62.07 | 97.0% |"),
          "64-GPU projection row by hand")

    # report.json of the baseline: history as stored, NaN as null, final metrics exact.
    doc = json.loads(read(os.path.join(out, "hm-base", "report.json")))
    check(doc["format"] == "dptrain-report" and doc["run"] == "hm-base" and doc["complete"],
          "report.json header")
    check(doc["history"]["val_loss"] == [2.0, None, 1.5, 1.25],
          f"val_loss with null for the epoch not evaluated: {doc['history']['val_loss']}")
    check(doc["history"]["epoch"] == [1, 2, 3, 4] and doc["history"]["steps"] == [10] * 4,
          "epoch and steps as integers")
    with h5py.File(os.path.join(runs[0], "metrics.h5")) as f:
        same = all(doc["history"][k] == [None if math.isnan(v) else float(v)
                                         for v in f["history"][k][:]] for k in f["history"])
    check(same and len(doc["history"]) == 19, "every /history field exported exactly")
    check(doc["summary"]["train_time_s"] == 46.0 and doc["summary"]["compute_s"] == 34.0
          and abs(doc["summary"]["images_per_sec"] - 3650 / 46) < 1e-12,
          f"summary: {doc['summary']}")
    final = doc["final"]
    rows, macro, weighted, accuracy, support = fraction_report_numbers(DOC_CONFUSION)
    check(final["confusion_matrix"] == DOC_CONFUSION and final["class_names"] == DOC_NAMES
          and final["samples"] == 5 and final["accuracy"] == 0.6 and final["loss"] == 1.25,
          "final confusion matrix, names, samples, accuracy, loss")
    per_class_ok = all(
        abs(c["precision"] - float(p)) < 1e-15 and abs(c["recall"] - float(r)) < 1e-15
        and abs(c["f1-score"] - float(f1)) < 1e-15 and c["support"] == s and c["class"] == n
        for c, (p, r, f1), s, n in zip(final["per_class"], rows, support, DOC_NAMES))
    check(per_class_ok, f"per-class precision/recall/f1/support: {final['per_class']}")
    check(all(abs(final["macro avg"][k] - float(v)) < 1e-15
              for k, v in zip(("precision", "recall", "f1-score"), macro))
          and all(abs(final["weighted avg"][k] - float(v)) < 1e-15
                  for k, v in zip(("precision", "recall", "f1-score"), weighted))
          and final["macro avg"]["support"] == 5, "macro and weighted averages")

    for name, k in (("hm-base", 3), ("hm-2", 4), ("hm-4", 3)):
        check_figures(os.path.join(out, name), k, name)
    texts = svg_texts(os.path.join(out, "hm-2", "confusion_matrix.svg"))
    check(all(n in texts for n in ABSENT_NAMES) and "Predicted class" in texts
          and "True class" in texts, "confusion matrix SVG names every class and both axes")
    # hm-2's unicorn has no test image: its bar reads n/a, the others their recall.
    texts = svg_texts(os.path.join(out, "hm-2", "per_class_accuracy.svg"))
    check(texts.count("n/a") == 1 and all(v in texts for v in ("83.3", "50.0", "100.0")),
          "per-class accuracy: recalls 83.3, 50.0, 100.0 and n/a for the class without images")
    texts = svg_texts(os.path.join(out, "hm-base", "training_curves.svg"))
    check(all(t in texts for t in ("Epoch", "Cross-entropy loss", "Accuracy (%)", "Time (s)",
                                   "Learning rate")), "training curves label their axes")
    check("Learning rate (end of epoch)" in texts,
          "without /steps the learning rate is drawn at the end of each epoch")
    # The training loss of a label-smoothed run is against the smoothed targets: the legend
    # says so, beside the validation loss (plain cross-entropy).
    smoothed = svg_texts(os.path.join(out, "hm-2", "training_curves.svg"))
    check("train (label smoothing 0.2)" in smoothed and "train" in texts
          and not any("label smoothing" in t for t in texts),
          "a label-smoothed run's training loss is named so, a plain run's is not")
    check_epoch_ticks()
    check_step_lr(tmp)

    # --skip-epochs 1 leaves the warm-up epoch out. Baseline: 27 s, 100 images/s, compute
    # 25.5 s (94.4%). 2 ranks: 16.5 s, 180/s = 1.80x, 90.0%; compute 13.05 s (79.1%),
    # exposed 1.8 s (10.9%), hidden 1.2 s, data 0.75 s (4.5%). 4 ranks: 10.8 s, 300/s = 3.00x,
    # 75.0%; compute 7.5 s (69.4%), exposed 2.1 s (19.4%), hidden 1.5 s, data 0.3 s (2.8%).
    out_skip = os.path.join(tmp, "skip")
    proc = run_report(TOOL, "--baseline", runs[0], runs[1], runs[2], "--out", out_skip,
                      "--skip-epochs", "1")
    check(proc.returncode == 0, f"--skip-epochs 1: exit 0 (got {proc.returncode}) {proc.stderr}")
    table = [line for line in read(os.path.join(out_skip, "comparison.md")).splitlines()
             if line.startswith("| hm-")]
    check(table == [
        "| hm-base (baseline) | 1 | 3 | 27.00 | 9.00 | 100.0 | 1.00 | 1.00 | 100.0% | 60.00% "
        "| 25.50 (94.4%) | 0.00 (0.0%) | 0.00 | 1.50 (5.6%) |",
        "| hm-2 | 2 | 3 | 16.50 | 5.50 | 180.0 | 1.80 | 2.00 | 90.0% | 75.00% "
        "| 13.05 (79.1%) | 1.80 (10.9%) | 1.20 | 0.75 (4.5%) |",
        "| hm-4 | 4 | 3 | 10.80 | 3.60 | 300.0 | 3.00 | 4.00 | 75.0% | 87.50% "
        "| 7.50 (69.4%) | 2.10 (19.4%) | 1.50 | 0.30 (2.8%) |",
    ], "comparison.md rows with --skip-epochs 1:\n" + "\n".join(table))
    check(not os.path.exists(os.path.join(out_skip, "hm-base", "projection.md")),
          "no projection without a parameter count or checkpoint")
    check("give --params or --gradient-bytes" in proc.stderr,
          "...and stderr says how to get one")

    # Without --out: outputs land in each run directory, the comparison in the baseline's.
    proc = run_report(TOOL, "--baseline", runs[0], runs[1], "--params", "1000")
    check(proc.returncode == 0 and os.path.exists(os.path.join(runs[0], "comparison.md"))
          and os.path.exists(os.path.join(runs[1], "classification_report.txt"))
          and os.path.exists(os.path.join(runs[0], "scaling.png")),
          "without --out, outputs go into the run directories")

    # One run, --out: files directly in the folder. Exact ties and many classes.
    for label, confusion, names in (("tie", TIE_CONFUSION, TIE_NAMES),
                                    ("cifar", None, CIFAR_NAMES),
                                    ("thirty", None, [f"class-{i:02d}" for i in range(30)])):
        k = len(names)
        if confusion is None:  # a diagonal-heavy matrix with every kind of cell
            confusion = [[(50 if t == p else (t * 7 + p * 3) % 5) for p in range(k)]
                         for t in range(k)]
        run_dir = os.path.join(tmp, "runs", label)
        write_metrics(os.path.join(run_dir, "metrics.h5"), history_rows(1),
                      config(label, epochs=1), final_from_confusion(confusion, names))
        single = os.path.join(tmp, "single-" + label)
        proc = run_report(TOOL, run_dir, "--out", single, "--params", "1000")
        check(proc.returncode == 0, f"{label}: exit 0 ({proc.stderr.strip()})")
        check_figures(single, k, label)
        rows, macro, weighted, accuracy, support = fraction_report_numbers(confusion)
        lines = read(os.path.join(single, "classification_report.txt")).splitlines()
        width = max(12, max(len(n) for n in names))
        ok = len(lines) == k + 6
        for c, (p, r, f1) in enumerate(rows):
            ok = ok and lines[2 + c] == (f"{names[c]:>{width}}  {float(p):9.2f} {float(r):9.2f} "
                                         f"{float(f1):9.2f} {support[c]:9d}")
        ok = ok and lines[k + 3] == f"{'accuracy':>{width}}  {'':9} {'':9} " \
                                    f"{float(accuracy):9.2f} {sum(support):9d}"
        check(ok, f"{label}: every number of the classification report from exact fractions")
    tie = read(os.path.join(tmp, "single-tie", "classification_report.txt")).splitlines()
    check(tie[2] == "           a       0.09      0.20      0.12         5",
          f"F1 2/16 = 0.125 prints as 0.12 like current scikit-learn: '{tie[2]}'")

    # Reported again after the run went on without a final evaluation (resumed, then
    # stopped): the earlier report's confusion matrix, classification report and projection
    # are removed, not left beside the new curves.
    again = os.path.join(tmp, "runs", "again")
    write_metrics(os.path.join(again, "metrics.h5"), history_rows(1), config("again", epochs=1),
                  final_from_confusion(TIE_CONFUSION, TIE_NAMES))
    first = run_report(TOOL, again, "--params", "1000")
    earlier = sorted(os.listdir(again))
    write_metrics(os.path.join(again, "metrics.h5"), history_rows(2), config("again", epochs=3))
    second = run_report(TOOL, again)
    left = sorted(os.listdir(again))
    check(first.returncode == 0 and "confusion_matrix.png" in earlier
          and "projection.md" in earlier and second.returncode == 3
          and left == ["metrics.h5", "report.json", "training_curves.png", "training_curves.svg"]
          and "removed (an earlier report's" in second.stderr,
          f"a report again without /final or a parameter count: only its own files left {left}")

finish()
