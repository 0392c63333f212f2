"""Helpers for the dptrain-report tests: hand-made metrics.h5 files in the layout
lib/io/metrics_writer.cpp writes (README.md, "Outputs"), image checks, running the tool, and
the check lines (tests/comm/checks.py)."""
import os
import struct
import subprocess
import sys
import xml.etree.ElementTree as ET

import h5py
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "comm"))
from checks import check, finish  # noqa: E402,F401  (the report tests' check lines)

HISTORY_FIELDS = ("epoch", "steps", "lr", "train_loss", "train_acc", "val_loss", "val_acc",
                  "epoch_time", "images_per_sec", "time_data", "time_forward", "time_backward",
                  "time_comm", "time_optimizer", "time_eval", "skipped_steps",
                  "time_comm_hidden", "step_time_max", "step_time_min")


def history_rows(epochs, **overrides):
    """A plausible history of `epochs` rows; keyword arguments replace whole fields."""
    e = np.arange(1, epochs + 1, dtype=np.float64)
    rows = {
        "epoch": e, "steps": np.full(epochs, 10.0), "lr": 0.1 * 0.5 ** (e - 1),
        "train_loss": 2.0 / e, "train_acc": 0.9 - 0.6 / e, "val_loss": 2.2 / e,
        "val_acc": 0.85 - 0.6 / e, "epoch_time": np.full(epochs, 10.0),
        "images_per_sec": np.full(epochs, 100.0), "time_data": np.full(epochs, 0.5),
        "time_forward": np.full(epochs, 3.0), "time_backward": np.full(epochs, 5.0),
        "time_comm": np.zeros(epochs), "time_optimizer": np.full(epochs, 0.5),
        "time_eval": np.full(epochs, 1.0), "skipped_steps": np.zeros(epochs),
        "time_comm_hidden": np.zeros(epochs), "step_time_max": np.full(epochs, 0.9),
        "step_time_min": np.full(epochs, 0.9),
    }
    for key, value in overrides.items():
        rows[key] = np.asarray(value, dtype=np.float64)
    return rows


def final_from_confusion(confusion, class_names, loss=1.25):
    """The /final group dptrain writes for a confusion matrix (precision etc. as scikit-learn,
    0 where undefined)."""
    c = np.asarray(confusion, dtype=np.int64)
    tp = np.diag(c).astype(float)
    pred, true = c.sum(axis=0), c.sum(axis=1)
    precision = np.where(pred > 0, tp / np.maximum(pred, 1), 0.0)
    recall = np.where(true > 0, tp / np.maximum(true, 1), 0.0)
    f1 = np.where(precision + recall > 0,
                  2 * precision * recall / np.maximum(precision + recall, 1e-300), 0.0)
    return {"confusion_matrix": c, "precision": precision, "recall": recall, "f1": f1,
            "support": true, "class_names": list(class_names),
            "attrs": {"accuracy": float(tp.sum() / c.sum()), "loss": loss,
                      "samples": int(c.sum())}}


def write_metrics(path, history, config, final=None, build=None, fmt="dptrain-metrics"):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with h5py.File(path, "w") as f:
        f.attrs["format"] = fmt
        f.attrs["format_version"] = 1
        g = f.create_group("config")
        for key, value in config.items():
            g.attrs[key] = str(value)
        b = f.create_group("build")
        for key, value in (build or {"dptrain_version": "test"}).items():
            b.attrs[key] = value
        h = f.create_group("history")
        for name in HISTORY_FIELDS:
            values = np.asarray(history[name], dtype=np.float64)
            h.create_dataset(name, data=values, maxshape=(None,), chunks=(64,))
        if final is not None:
            g = f.create_group("final")
            for name in ("confusion_matrix", "precision", "recall", "f1", "support"):
                g.create_dataset(name, data=final[name])
            g.create_dataset("class_names", data=[n.encode() for n in final["class_names"]],
                             dtype=h5py.string_dtype())
            for key, value in final["attrs"].items():
                g.attrs[key] = value


def config(run_name, world_size=1, batch_size=64, epochs=3, **extra):
    c = {"run-name": run_name, "world-size": world_size, "batch-size": batch_size,
         "epochs": epochs, "arch": "resnet8", "backend": "cpu backend, 1 threads (test)"}
    c.update(extra)
    return c


def png_size(path):
    """(width, height) of a PNG, read from its signature and IHDR chunk; None if not a PNG."""
    with open(path, "rb") as f:
        head = f.read(24)
    if len(head) < 24 or head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        return None
    return struct.unpack(">II", head[16:24])


def png_complete(path):
    """A PNG that ends with its IEND chunk (not truncated)."""
    with open(path, "rb") as f:
        data = f.read()
    return data.endswith(b"IEND\xaeB`\x82")


def svg_ok(path):
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError:
        return False
    return root.tag.endswith("svg")


def svg_texts(path):
    """Every text string in an SVG written with svg.fonttype 'none'."""
    root = ET.parse(path).getroot()
    return ["".join(e.itertext()) for e in root.iter() if e.tag.endswith("text")]


def run_report(tool, *args):
    return subprocess.run([tool, *args], capture_output=True, text=True,
                          timeout=120)
