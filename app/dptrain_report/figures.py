"""The report's figures, drawn with matplotlib's Agg backend (no display needed) and saved as
PNG and SVG. Sizes are fixed in inches at 100 dpi, never cropped to content, so every PNG has a
predictable pixel size (figure_size() below); constrained layout keeps labels inside it."""
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from .classification import class_metrics  # noqa: E402
from .output import replace_output  # noqa: E402

DPI = 100
# Text stays text in the SVG (searchable, small); no date, so reruns give identical files.
matplotlib.rcParams.update({"svg.fonttype": "none", "svg.hashsalt": "dptrain-report",
                            "font.size": 10})
# Class names are written in each cell below this many classes; above, only the colours.
ANNOTATE_MAX_CLASSES = 20


def as_written(name):
    """A run or class name drawn as written: matplotlib reads text between two "$" as a
    formula (its own tick labels use that, so it stays on), so each "$" is escaped."""
    return name.replace("$", r"\$")


def figure_size(kind, num_classes=0):
    """(width, height) in inches; pixels are these times DPI."""
    if kind == "curves":
        return 12.0, 8.0
    # Half an inch a class up to 20 classes (room for the numbers in the cells), then less.
    first = min(num_classes, ANNOTATE_MAX_CLASSES)
    rest = max(num_classes - ANNOTATE_MAX_CLASSES, 0)
    if kind == "confusion":
        height = max(6.0, 2.5 + 0.5 * first + 0.12 * rest)
        return height + 1.5, height
    if kind == "per_class":
        return max(8.0, 1.5 + 0.6 * first + 0.15 * rest), 6.0
    if kind == "scaling":
        return 7.0, 5.0
    raise ValueError(kind)


def _save(fig, directory, stem):
    written = []
    try:
        for ext, extra in (("png", {}), ("svg", {"metadata": {"Date": None}})):
            path = os.path.join(directory, f"{stem}.{ext}")
            written.append(replace_output(
                path, lambda f: fig.savefig(f, format=ext, dpi=DPI, **extra)))
    finally:
        plt.close(fig)
    return written


def _epoch_axis(ax):
    ax.set_xlabel("Epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))  # 1 epoch: tick 1
    ax.grid(True, alpha=0.3)


def _train_val_panel(ax, epochs, train, val, title, ylabel, train_label="train"):
    """Training values every epoch, validation values where the epoch was evaluated."""
    ax.plot(epochs, train, "o-", label=train_label)
    evaluated = np.isfinite(val)
    if evaluated.any():
        ax.plot(epochs[evaluated], val[evaluated], "s--", label="validation")
    ax.set_title(title)
    ax.set_ylabel(ylabel)
    ax.legend()
    _epoch_axis(ax)


def _phase_panel(ax, h, epochs):
    """The epoch's wall time split into its phases; what no timer covers is "other"."""
    exposed_comm = h["time_comm"] - h["time_comm_hidden"]
    parts = [("data wait", h["time_data"]), ("forward", h["time_forward"]),
             ("backward", h["time_backward"]), ("comm (exposed)", exposed_comm),
             ("optimizer", h["time_optimizer"]), ("evaluation", h["time_eval"])]
    other = h["epoch_time"] - sum(values for _, values in parts)
    parts.append(("other", np.maximum(other, 0.0)))
    bottom = np.zeros_like(epochs)
    for label, values in parts:
        ax.bar(epochs, values, bottom=bottom, label=label, width=0.6)
        bottom = bottom + values
    ax.set_title("Epoch time by phase")
    ax.set_ylabel("Time (s)")
    # Headroom above the tallest bar for the legend, so it never covers a bar.
    ax.set_ylim(0, 1.4 * max(float(np.max(bottom)), 1e-9))
    ax.legend(fontsize=8, ncol=4, loc="upper center")
    _epoch_axis(ax)


# Above this many steps the LR curve is drawn through evenly spaced ones (a step drop then
# shows as a slope over 1/MAX_LR_POINTS of the run), which keeps the SVG small.
MAX_LR_POINTS = 20000


def _lr_panel(ax, run):
    """Every step's LR where /steps has it (per-step schedules: warm-up, one-cycle, airbench's
    warm-up and decay), else the end of each epoch's."""
    h, epochs = run.history, run.history["epoch"]
    if run.step_lr is not None and len(run.step_lr[0]) > len(epochs):
        place, lr = run.step_lr
        if len(lr) > MAX_LR_POINTS:
            keep = np.unique(np.linspace(0, len(lr) - 1, MAX_LR_POINTS).astype(int))
            place, lr = place[keep], lr[keep]
        ax.plot(place, lr, "-", color="tab:purple")
        ax.set_title("Learning rate (every step)")
    else:
        lr = h["lr"]
        ax.plot(epochs, lr, "o-", color="tab:purple")
        ax.set_title("Learning rate (end of epoch)")
    ax.set_ylabel("Learning rate")
    positive = lr[lr > 0]
    if positive.size == len(lr) and positive.max() > 20 * positive.min():
        ax.set_yscale("log")  # step decay and annealing span decades
        ax.set_ylabel("Learning rate (log scale)")
    else:
        ax.ticklabel_format(axis="y", style="sci", scilimits=(-3, 3))
    _epoch_axis(ax)


def _label_smoothing(run):
    """The run's --label-smoothing (0 where /config does not record it, or not as a number)."""
    try:
        return float(run.config.get("label-smoothing") or 0)
    except ValueError:
        return 0.0


def training_curves(run, directory):
    h = run.history
    epochs = h["epoch"]
    fig, axes = plt.subplots(2, 2, figsize=figure_size("curves"), dpi=DPI, layout="constrained")
    title = f"Training curves: {as_written(run.name)}"
    if run.final is None:
        planned = run.epochs_planned
        title += (f" ({'running' if run.running else 'stopped'} after {run.epochs_done}"
                  + (f" of {planned}" if planned else "") + " epochs; no final evaluation)")
    fig.suptitle(title)
    # With label smoothing the training loss is against the smoothed targets, whose entropy is
    # its floor; the validation loss is plain cross-entropy.
    smoothing = _label_smoothing(run)
    _train_val_panel(axes[0, 0], epochs, h["train_loss"], h["val_loss"], "Loss",
                     "Cross-entropy loss",
                     f"train (label smoothing {smoothing:g})" if smoothing > 0 else "train")
    _train_val_panel(axes[0, 1], epochs, 100 * h["train_acc"], 100 * h["val_acc"], "Accuracy",
                     "Accuracy (%)")
    _phase_panel(axes[1, 0], h, epochs)
    _lr_panel(axes[1, 1], run)
    return _save(fig, directory, "training_curves")


def _class_ticks(ax, names, axis):
    names = [as_written(n) for n in names]
    positions = np.arange(len(names))
    size = 10 if len(names) <= ANNOTATE_MAX_CLASSES else 7
    if axis == "x":
        ax.set_xticks(positions)
        ax.set_xticklabels(names, rotation=45, ha="right", rotation_mode="anchor", fontsize=size)
    else:
        ax.set_yticks(positions)
        ax.set_yticklabels(names, fontsize=size)


def confusion_matrices(run, directory):
    final = run.final
    k = len(final.class_names)
    counts = final.confusion
    rows = counts.sum(axis=1, keepdims=True)
    normalised = np.divide(counts, rows, out=np.zeros(counts.shape), where=rows > 0)
    written = []
    for stem, values, title, fmt, label in (
            ("confusion_matrix", counts, "Confusion matrix (counts)", "{:d}", "Images"),
            ("confusion_matrix_normalized", normalised,
             "Confusion matrix (row-normalised: share of each true class)", "{:.2f}",
             "Share of the true class")):
        fig, ax = plt.subplots(figsize=figure_size("confusion", k), dpi=DPI,
                               layout="constrained")
        image = ax.imshow(values, cmap="Blues", vmin=0,
                          vmax=1.0 if values is normalised else max(1, int(values.max())))
        fig.colorbar(image, ax=ax, label=label, shrink=0.8)
        _class_ticks(ax, final.class_names, "x")
        _class_ticks(ax, final.class_names, "y")
        ax.set_xlabel("Predicted class")
        ax.set_ylabel("True class")
        ax.set_title(f"{title}\n{as_written(run.name)}, {final.samples} test images")
        if k <= ANNOTATE_MAX_CLASSES:
            threshold = image.norm.vmax / 2
            for t in range(k):
                for p in range(k):
                    v = values[t, p]
                    ax.text(p, t, fmt.format(int(v) if fmt == "{:d}" else v), ha="center",
                            va="center", fontsize=8 if k > 10 else 9,
                            color="white" if v > threshold else "black")
        written += _save(fig, directory, stem)
    return written


def per_class_accuracy(run, directory):
    final = run.final
    k = len(final.class_names)
    metrics = class_metrics(final.confusion)
    recall = 100 * metrics.recall
    fig, ax = plt.subplots(figsize=figure_size("per_class", k), dpi=DPI, layout="constrained")
    positions = np.arange(k)
    bars = ax.bar(positions, recall, color="tab:blue")
    if k <= ANNOTATE_MAX_CLASSES:
        # A class without test images has no accuracy: its bar (0, as scikit-learn's
        # zero_division) is labelled n/a, not 0.0.
        labels = [f"{v:.1f}" if n > 0 else "n/a" for v, n in zip(recall, metrics.support)]
        # On a white patch above the overall-accuracy line, which would strike them through.
        for text in ax.bar_label(bars, labels=labels, fontsize=8, padding=2):
            text.set_bbox({"facecolor": "white", "edgecolor": "none", "pad": 1})
            text.set_zorder(4)
    overall = 100 * final.accuracy
    ax.axhline(overall, color="tab:red", linestyle="--", zorder=3,
               label=f"overall accuracy {overall:.2f}%")
    _class_ticks(ax, final.class_names, "x")
    ax.set_xlabel("True class")
    ax.set_ylabel("Accuracy (%) = recall of the class")
    # Headroom above 100% for the bar labels and the legend, which stay clear of each other.
    ax.set_ylim(0, 122)
    ax.set_yticks(np.arange(0, 101, 20))
    ax.set_title(f"Per-class accuracy: {as_written(run.name)}, {final.samples} test images")
    ax.legend(loc="upper right")
    ax.grid(True, axis="y", alpha=0.3)
    return _save(fig, directory, "per_class_accuracy")


def scaling_plot(rows, directory):
    """Measured speedup of each run over the baseline against the ideal (linear in ranks)."""
    fig, ax = plt.subplots(figsize=figure_size("scaling"), dpi=DPI, layout="constrained")
    ranks = np.array([r.ranks for r in rows], dtype=float)
    speedup = np.array([r.speedup for r in rows])
    base = rows[0].ranks
    top = max(ranks.max(), base * speedup.max())
    ideal_x = np.array([min(ranks.min(), base), top])
    ax.plot(ideal_x, ideal_x / base, "k--", label="ideal (linear in ranks)")
    ax.plot(ranks, speedup, "o", color="tab:blue", markersize=8, label="measured")
    for r in rows:
        ax.annotate(f"{as_written(r.name)}\n{100 * r.efficiency:.0f}% efficiency",
                    (r.ranks, r.speedup),
                    textcoords="offset points", xytext=(6, -4), fontsize=8, va="top")
    ax.set_xlabel("Ranks (world size)")
    ax.set_ylabel(f"Speedup over the baseline ({base} rank{'s' if base > 1 else ''})")
    ax.set_title("Data-parallel scaling: measured images/s relative to the baseline")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlim(0, top * 1.25 + 0.5)
    ax.set_ylim(0, max(top / base, speedup.max()) * 1.25)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper left")
    return _save(fig, directory, "scaling")
