"""--augment-on device against --augment-on host: the same short training run (Fashion-MNIST,
random crop and flip, a partial last batch in evaluation) must give bit-identical losses,
accuracies and weights whether the loader thread or the backend (Backend::augment_batch, fed
the raw pixels and the draws) augments, and the log must say which one did."""
import os
import subprocess
import sys
import tempfile

import h5py
import numpy as np

from e2e_util import check, pack_fashion_mnist

DPTRAIN = sys.argv[1]


with tempfile.TemporaryDirectory() as tmp:
    packed = pack_fashion_mnist(DPTRAIN, tmp)
    runs = {}
    for where in ["host", "device"]:
        out = os.path.join(tmp, "output")
        train = subprocess.run(
            [DPTRAIN, "train", "--data", packed, "--arch", "resnet8", "--epochs", "2",
             "--max-steps-per-epoch", "15", "--batch-size", "96", "--crop-padding", "3",
             "--flip", "true", "--device", "cpu", "--output-dir", out, "--run-name", where,
             "--augment-on", where, "--log-every", "5"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        sys.stdout.write(train.stdout)
        check(train.returncode == 0, f"dptrain train --augment-on {where} succeeded")
        said = "on the backend" if where == "device" else "in the loader thread"
        check(f"augmentation: {said}" in train.stdout, f"the log says augmentation ran {said}")
        run = os.path.join(out, where)
        with h5py.File(os.path.join(run, "metrics.h5"), "r") as f:
            runs[where] = {k: f["history"][k][:] for k in ["train_loss", "train_acc", "val_loss",
                                                              "val_acc"]}
            runs[where]["confusion"] = f["final"]["confusion_matrix"][:]
        with h5py.File(os.path.join(run, "checkpoint.h5"), "r") as f:
            weights = []
            f.visititems(lambda name, obj: weights.append(obj[()]) if isinstance(obj, h5py.Dataset)
                         and name.split("/")[0] in ("params", "buffers", "optimizer") else None)
            runs[where]["weights"] = weights
    host, device = runs["host"], runs["device"]
    for key in ["train_loss", "train_acc", "val_loss", "val_acc", "confusion"]:
        check(np.array_equal(host[key], device[key]), f"{key} identical")
    check(len(host["weights"]) > 0 and len(host["weights"]) == len(device["weights"]) and
          all(np.array_equal(a, b) for a, b in zip(host["weights"], device["weights"])),
          f"all {len(host['weights'])} checkpoint tensors identical")
    check(np.all(np.isfinite(host["train_loss"])), "losses are finite")
