"""What two dptrain runs must agree on, bit for bit, to count as the same run: every step's
loss, accuracy and learning rate (/steps), every epoch's metrics (/history), the final
evaluation, and the final checkpoint's weights, BN statistics (every rank's), momentum and,
with Lookahead, its average (every rank's of the BN statistics); and how far apart two runs'
final weights are where they may differ by rounding."""
import os

import h5py
import numpy as np


def snapshot(run_dir):
    out = {}
    with h5py.File(os.path.join(run_dir, "metrics.h5"), "r") as f:
        for field in ("step", "epoch", "loss", "accuracy", "lr"):
            out[f"steps/{field}"] = f["steps"][field][:]
        for field in ("epoch", "steps", "lr", "train_loss", "train_acc", "val_loss", "val_acc"):
            out[f"history/{field}"] = f["history"][field][:]
        out["final/confusion_matrix"] = f["final/confusion_matrix"][:]
    with h5py.File(os.path.join(run_dir, "checkpoint.h5"), "r") as f:
        for group in ("params", "buffers", "optimizer/momentum"):
            for name, ds in f[group].items():
                out[f"{group}/{name}"] = ds[:]
        out["train_state/buffers_by_rank"] = f["train_state/buffers_by_rank"][:]
        if "lookahead" in f:  # only a run with Lookahead (then in both runs: see differences)
            for group in ("lookahead/params", "lookahead/buffers"):
                for name, ds in f[group].items():
                    out[f"{group}/{name}"] = ds[:]
            out["train_state/lookahead_buffers_by_rank"] = \
                f["train_state/lookahead_buffers_by_rank"][:]
    return out


def differences(a, b):
    """The keys whose arrays differ in shape or in any bit (or exist in one snapshot only)."""
    differ = [k for k in a if k not in b or a[k].shape != b[k].shape or
              a[k].tobytes() != b[k].tobytes()]
    return differ + [k for k in b if k not in a]


def weights(run_dir):
    """The final checkpoint's parameters, flat, in name order."""
    with h5py.File(os.path.join(run_dir, "checkpoint.h5"), "r") as f:
        return np.concatenate([ds[:].ravel() for _, ds in sorted(f["params"].items())])


def relative(a, b):
    """The relative L2 distance of a from b."""
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30))
