"""report.json: a run's configuration, history and final metrics for readers without HDF5.
Strict JSON: an epoch without evaluation has null (not NaN) in val_loss / val_acc."""
import json
import math

from .classification import class_metrics

FORMAT = "dptrain-report"
FORMAT_VERSION = 1


def _number(value):
    value = float(value)
    return value if math.isfinite(value) else None


def _history_value(name, value):
    if name in ("epoch", "steps", "skipped_steps"):
        return int(value)
    return _number(value)


def run_json(run, timing):
    h = run.history
    document = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "run": run.name,
        "metrics_file": run.metrics_path,
        "config": run.config,  # the first job's effective options
        "resumes": run.resumes,  # each later job's that trained (/resumes/<n>/config), in order
        "build": run.build,
        "epochs_done": run.epochs_done,
        "epochs_planned": run.epochs_planned,
        "complete": run.final is not None,
        "history": {name: [_history_value(name, v) for v in values]
                    for name, values in h.items()},
        "summary": {
            "train_time_s": timing.train_time,
            "images_per_sec": timing.images_per_sec,
            "compute_s": timing.compute,
            "comm_exposed_s": timing.comm_exposed,
            "comm_hidden_s": timing.comm_hidden,
            "data_wait_s": timing.data_wait,
            "compute_per_step_s": timing.compute_per_step,
            "first_epoch_counted": timing.first_epoch,
        },
        "final": None,
    }
    if run.final is not None:
        f = run.final
        m = class_metrics(f.confusion)
        document["final"] = {
            "accuracy": f.accuracy,
            "loss": _number(f.loss),
            "samples": f.samples,
            "tta": f.tta,
            "class_names": f.class_names,
            "confusion_matrix": f.confusion.tolist(),
            "per_class": [
                {"class": name, "precision": float(m.precision[k]), "recall": float(m.recall[k]),
                 "f1-score": float(m.f1[k]), "support": int(m.support[k])}
                for k, name in enumerate(f.class_names)],
            "macro avg": dict(zip(("precision", "recall", "f1-score"), m.macro),
                              support=int(m.support.sum())),
            "weighted avg": dict(zip(("precision", "recall", "f1-score"), m.weighted),
                                 support=int(m.support.sum())),
        }
    return json.dumps(document, indent=2, allow_nan=False) + "\n"
