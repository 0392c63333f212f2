"""End to end: pack Fashion-MNIST from Debian's dataset-fashion-mnist package, train the demo
config (jobs/fashion_mnist_cpu_demo.cfg), require >= 90% test accuracy, check that metrics.h5
and checkpoint.h5 hold what README.md documents, and that `dptrain eval` on the checkpoint
reproduces the final accuracy.

Arguments after the source directory go to both `train` and `eval` (the GPU variants pass
--device cuda --deterministic [--precision bf16], the CPU bf16 one --device cpu --precision
bf16); a variant that asks for a GPU where none is usable, or for bf16 on a CPU without bf16
arithmetic, exits with 77, which CTest reports as skipped."""
import os
import re
import subprocess
import sys
import tempfile

import h5py
import numpy as np

from e2e_util import check, pack_fashion_mnist

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "comm"))
from tiny_dataset import text_attrs  # noqa: E402

DPTRAIN, SOURCE_DIR, EXTRA = sys.argv[1], sys.argv[2], sys.argv[3:]
SKIPPED = 77
ACCURACY_BAR = 0.90

HISTORY_FIELDS = ["epoch", "steps", "lr", "train_loss", "train_acc", "val_loss", "val_acc",
                  "epoch_time", "images_per_sec", "time_data", "time_forward", "time_backward",
                  "time_comm", "time_comm_hidden", "time_optimizer", "time_eval", "step_time_max",
                  "step_time_min", "skipped_steps"]


with tempfile.TemporaryDirectory() as tmp:
    packed = pack_fashion_mnist(DPTRAIN, tmp)
    out = os.path.join(tmp, "output")
    config = os.path.join(SOURCE_DIR, "jobs", "fashion_mnist_cpu_demo.cfg")
    train = subprocess.run([DPTRAIN, "train", "--config", config, "--data", packed,
                            "--output-dir", out, "--run-name", "e2e", "--log-every", "100"] + EXTRA,
                           stderr=subprocess.PIPE, text=True)
    sys.stderr.write(train.stderr)
    gpu_required = os.environ.get("DPTRAIN_REQUIRE_GPU") == "on"  # run_on_device.sh sets it
    if train.returncode != 0 and EXTRA and not gpu_required and (
            "no usable GPU" in train.stderr or "has no CUDA backend" in train.stderr):
        print(f"SKIPPED: {' '.join(EXTRA)} needs a usable GPU")
        sys.exit(SKIPPED)
    if train.returncode != 0 and "neither AVX512-BF16 nor AMX" in train.stderr:
        print(f"SKIPPED: {' '.join(EXTRA)} needs a CPU with bf16 arithmetic")
        sys.exit(SKIPPED)
    check(train.returncode == 0, f"dptrain train {' '.join(EXTRA)} succeeded")
    run = os.path.join(out, "e2e")

    with h5py.File(os.path.join(run, "metrics.h5"), "r") as f:
        check(text_attrs(f)["format"] == "dptrain-metrics", "metrics.h5 format attribute")
        cfg = text_attrs(f["config"])
        check(cfg["arch"] == "resnet8" and cfg["epochs"] == "4", "config attributes recorded")
        check(cfg["data"] == packed, "command line overrides the config file's data path")
        # Every option `train --help` lists, those without a default and not given included.
        usage = subprocess.run([DPTRAIN, "train", "--help"], capture_output=True, text=True).stdout
        listed = set(re.findall(r"^\s+(?:-\w \[ )?--([a-z0-9-]+)", usage, re.M)) - {"help"}
        check(len(listed) > 50 and listed <= set(cfg),
              f"every train option has a /config attribute (missing: {sorted(listed - set(cfg))})")
        if "--precision" in EXTRA:
            wanted = EXTRA[EXTRA.index("--precision") + 1]
            check(cfg["precision"] == wanted, f"precision {wanted} recorded")
        check("onednn" in f["build"].attrs and "mpi" in f["build"].attrs, "build info attributes")
        epochs = int(cfg["epochs"])
        for name in HISTORY_FIELDS:
            check(f["history"][name].shape == (epochs,), f"history/{name} has one row per epoch")
        h = {k: f["history"][k][:] for k in HISTORY_FIELDS}
        check(list(h["epoch"]) == list(range(1, epochs + 1)), "epochs numbered 1..N")
        check(np.all(h["steps"] == np.ceil(60000 / 128)), "full epochs of 469 steps")
        check(np.all(np.isfinite(h["train_loss"])) and h["train_loss"][-1] < h["train_loss"][0],
              "training loss falls")
        check(np.all(h["images_per_sec"] > 0) and np.all(h["time_forward"] > 0) and
              np.all(h["time_backward"] > 0), "throughput and phase times recorded")
        final = f["final"]
        cm = final["confusion_matrix"][:]
        check(cm.shape == (10, 10) and cm.sum() == 10000, "confusion matrix counts 10000 test images")
        check(np.all(cm.sum(axis=1) == 1000), "1000 test images per class")
        acc = np.trace(cm) / cm.sum()
        check(abs(acc - final.attrs["accuracy"]) < 1e-12, "accuracy attribute agrees with matrix")
        check(abs(acc - h["val_acc"][-1]) < 1e-12, "last history val_acc is the final accuracy")
        precision = np.diag(cm) / np.maximum(cm.sum(axis=0), 1)
        recall = np.diag(cm) / cm.sum(axis=1)
        check(np.allclose(final["precision"][:], precision), "per-class precision")
        check(np.allclose(final["recall"][:], recall), "per-class recall")
        f1 = np.where(precision + recall > 0, 2 * precision * recall / np.maximum(precision + recall, 1e-300), 0)
        check(np.allclose(final["f1"][:], f1), "per-class F1")
        check(list(final["support"][:]) == [1000] * 10, "per-class support")
        names = [n.decode() if isinstance(n, bytes) else n for n in final["class_names"][:]]
        check(names[0] == "T-shirt/top" and names[9] == "Ankle boot", "class names")
        print(f"test accuracy {acc:.4f} after {epochs} epochs "
              f"({h['images_per_sec'].mean():.0f} img/s, {h['epoch_time'].sum():.0f} s)")
        check(acc >= ACCURACY_BAR, f"test accuracy {acc:.4f} >= {ACCURACY_BAR}")

    with h5py.File(os.path.join(run, "checkpoint.h5"), "r") as f:
        attrs = text_attrs(f)
        check(attrs["epoch"] == epochs and attrs["arch"] == "resnet8", "checkpoint epoch and arch")
        check(f.attrs["step"] == epochs * 469, "checkpoint global step")
        check(attrs["shortcut"] == "A" and not any("downsample" in k for k in f["params"]),
              "resnet8's default option-A shortcuts recorded, no projection parameters")
        check(f["params/conv1.weight"].shape == (16, 1, 3, 3), "conv1.weight in PyTorch layout")
        check(f["params/fc.weight"].shape == (10, 64), "fc.weight shape")
        check("bn1.running_mean" in f["buffers"] and "bn1.running_var" in f["buffers"],
              "BN running statistics")
        check(set(f["optimizer/momentum"].keys()) == set(f["params"].keys()),
              "a momentum buffer for every parameter")
    check(not os.path.exists(os.path.join(run, "checkpoint.h5.tmp")), "no temporary file left")

    subprocess.run([DPTRAIN, "eval", "--checkpoint", os.path.join(run, "checkpoint.h5"),
                    "--data", packed] + EXTRA, check=True)
    with h5py.File(os.path.join(run, "eval.h5"), "r") as f:
        check(np.array_equal(f["eval/confusion_matrix"][:], cm),
              "dptrain eval reproduces the final confusion matrix from the checkpoint")
print("end-to-end Fashion-MNIST passed")
