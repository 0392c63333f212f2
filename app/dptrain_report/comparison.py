"""Timing summaries of runs and the baseline-versus-distributed comparison (Markdown table).

Everything comes from /history. Per epoch, the training time is epoch_time - time_eval (the
trainer measures images_per_sec over exactly that span), so a run's throughput is the
time-weighted mean of its per-epoch images/s, i.e. its training images over its training time.
Throughput, not time, gives the speedup, so runs of different lengths compare fairly."""
from collections import Counter
from dataclasses import dataclass
from typing import Optional

from .load import EXIT_DATA, EXIT_USAGE, ReportError


@dataclass
class TimingSummary:
    first_epoch: int  # 1-based, the first epoch counted (after --skip-epochs)
    epochs: int       # epochs counted
    steps: int
    # A whole epoch's steps: the most any epoch took; in a run of one epoch, which may be cut
    # short, /steps' steps_per_epoch.
    epoch_steps: int
    train_time: float  # s, without evaluation
    images: float
    images_per_sec: float
    compute: float     # forward + backward + optimizer, s
    data_wait: float
    comm_total: float
    comm_hidden: float  # overlapped with backward (so inside `compute`)
    comm_exposed: float  # time steps were blocked on gradient communication

    @property
    def time_per_epoch(self):
        """Per whole epoch: a cut-short last epoch (--epochs 1.5, --stop-after-steps) counts as
        its share of one."""
        return self.train_time * self.epoch_steps / self.steps

    @property
    def compute_per_step(self):
        return self.compute / self.steps


def timing_summary(run, skip_epochs=0):
    h = run.history
    if skip_epochs >= run.epochs_done:
        raise ReportError(run.metrics_path, f"--skip-epochs {skip_epochs} leaves none of its "
                          f"{run.epochs_done} epochs", EXIT_USAGE)
    sl = slice(skip_epochs, None)
    train_time_each = h["epoch_time"][sl] - h["time_eval"][sl]
    train_time = float(train_time_each.sum())
    images = float((h["images_per_sec"][sl] * train_time_each).sum())
    steps = int(h["steps"][sl].sum())
    if train_time <= 0 or steps <= 0:
        raise ReportError(run.metrics_path, "/history has no training time or steps to summarise")
    comm_total = float(h["time_comm"][sl].sum())
    comm_hidden = float(h["time_comm_hidden"][sl].sum())
    return TimingSummary(
        first_epoch=int(h["epoch"][skip_epochs]), epochs=run.epochs_done - skip_epochs,
        steps=steps, epoch_steps=int(h["steps"].max()) if run.epochs_done > 1
        else max(run.steps_per_epoch, int(h["steps"].max())),
        train_time=train_time, images=images,
        images_per_sec=images / train_time,
        compute=float((h["time_forward"][sl] + h["time_backward"][sl]
                       + h["time_optimizer"][sl]).sum()),
        data_wait=float(h["time_data"][sl].sum()), comm_total=comm_total,
        comm_hidden=comm_hidden, comm_exposed=comm_total - comm_hidden)


@dataclass
class ComparisonRow:
    name: str
    ranks: int
    timing: TimingSummary
    speedup: float
    ideal: float
    efficiency: float
    accuracy: Optional[float]
    is_baseline: bool
    tta: Optional[int] = None  # the final evaluation's --tta level, where recorded


def _row_names(runs):
    """Each run's name in the table; where several share one (runs of one name in different
    folders), each followed by the folder it was read from, as given."""
    counts = Counter(run.name for run in runs)
    return [f"{run.name} ({run.directory})" if counts[run.name] > 1 else run.name
            for run in runs]


def compare(baseline, runs, skip_epochs=0):
    base_timing = timing_summary(baseline, skip_epochs)
    if base_timing.images_per_sec <= 0:
        raise ReportError(baseline.metrics_path, "the baseline trained no images in the epochs "
                          "compared (every step skipped as non-finite): no throughput to "
                          "compare against", EXIT_DATA)
    base_ranks = baseline.world_size
    rows = []
    names = _row_names([baseline] + runs)
    for (run, is_baseline), name in zip([(baseline, True)] + [(r, False) for r in runs], names):
        timing = base_timing if is_baseline else timing_summary(run, skip_epochs)
        ranks = run.world_size
        speedup = timing.images_per_sec / base_timing.images_per_sec
        ideal = ranks / base_ranks
        rows.append(ComparisonRow(
            name=name, ranks=ranks, timing=timing, speedup=speedup, ideal=ideal,
            efficiency=speedup / ideal,
            accuracy=run.final.accuracy if run.final is not None else None,
            is_baseline=is_baseline, tta=run.final.tta if run.final is not None else None))
    return rows


def _share(seconds, total):
    return f"{seconds:.2f} ({100 * seconds / total:.1f}%)"


def comparison_markdown(rows, skip_epochs=0):
    base = rows[0]
    lines = [
        f"# Scaling: {base.name} (baseline) versus distributed runs",
        "",
        "Measured by dptrain (rank 0's timers, from each run's metrics.h5). "
        + (f"The first {skip_epochs} epoch(s) of every run are left out as warm-up. "
           if skip_epochs else "All epochs count. ")
        + "Training time excludes evaluation.",
        "",
        "| run | ranks | epochs | train time (s) | time/epoch (s) | images/s | speedup | ideal "
        "| parallel efficiency | final accuracy | compute (s, %) | comm exposed (s, %) "
        "| comm hidden (s) | data wait (s, %) |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for r in rows:
        t = r.timing
        accuracy = f"{100 * r.accuracy:.2f}%" if r.accuracy is not None else "n/a (no /final)"
        if r.accuracy is not None and r.tta:
            accuracy += f" (TTA {r.tta})"  # of several views: not comparable to a plain one
        name = f"{r.name} (baseline)" if r.is_baseline else r.name
        lines.append(
            f"| {name} | {r.ranks} | {t.epochs} | {t.train_time:.2f} | {t.time_per_epoch:.2f} "
            f"| {t.images_per_sec:.1f} | {r.speedup:.2f} | {r.ideal:.2f} "
            f"| {100 * r.efficiency:.1f}% | {accuracy} | {_share(t.compute, t.train_time)} "
            f"| {_share(t.comm_exposed, t.train_time)} | {t.comm_hidden:.2f} "
            f"| {_share(t.data_wait, t.train_time)} |")
    lines += [
        "",
        "- images/s: training images over training time (the time-weighted mean of the "
        "per-epoch images/s; the images of a step skipped as non-finite are not counted, its "
        "time is). time/epoch: per whole epoch (a cut-short last epoch counts as its share).",
        "- speedup: images/s over the baseline's; ideal: ranks over the baseline's ranks; "
        "parallel efficiency: speedup / ideal.",
        "- compute: forward + backward + optimizer. comm exposed: gradient allreduce time the "
        "step waited for (time_comm - time_comm_hidden). comm hidden: allreduce time overlapped "
        "with backward (already inside compute). data wait: time waiting for the loader. "
        "Percentages are of the training time; the rest is synchronisation and bookkeeping.",
        "",
    ]
    return "\n".join(lines)
