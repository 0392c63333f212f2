"""`dptrain inspect` on each file dptrain reads or writes: a packed dataset, a checkpoint (with
its parameters' names and shapes), a metrics file (with its final evaluation) and an eval file
print what the files hold (checked against h5py's reading of them); another HDF5 file is
refused naming it, with exit 3.

usage: test_inspect.py DPTRAIN"""
import os
import sys
import tempfile

import h5py

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "comm"))
from e2e_util import check, run_dptrain  # noqa: E402
from tiny_dataset import write_tiny_dataset  # noqa: E402

DPTRAIN = sys.argv[1]


def dptrain(*args, code=0):
    return run_dptrain(DPTRAIN, *args, code=code)


with tempfile.TemporaryDirectory() as tmp:
    data = os.path.join(tmp, "tiny.h5")
    write_tiny_dataset(data, train=64, test=24)
    run = os.path.join(tmp, "out", "r")
    dptrain("train", "--data", data, "--arch", "resnet8", "--epochs", "2", "--batch-size", "16",
            "--threads", "1", "--max-steps-per-epoch", "2", "--output-dir",
            os.path.join(tmp, "out"), "--run-name", "r")
    checkpoint, metrics = os.path.join(run, "checkpoint.h5"), os.path.join(run, "metrics.h5")
    dptrain("eval", "--checkpoint", checkpoint, "--data", data, "--threads", "1")

    out = dptrain("inspect", data)
    check("tiny train: 64 images 8x8x3, 10 classes (c0, c1" in out
          and "tiny test: 24 images" in out, "dataset: both splits' sizes and class names")
    check("through a filter" not in out, "dataset: no note about filtered chunks")
    # The same data written as h5py does with compression="gzip" (multi-row chunks): read,
    # with a note that shuffled reads of it are slow.
    gzipped = os.path.join(tmp, "gzipped.h5")
    with h5py.File(data) as source, h5py.File(gzipped, "w") as f:
        for key, value in source.attrs.items():
            f.attrs[key] = value
        source.copy("class_names", f)
        for split in ("train", "test"):
            group = f.create_group(split)
            for key, value in source[split].attrs.items():
                group.attrs[key] = value
            group.create_dataset("images", data=source[split]["images"][:], compression="gzip")
            group.create_dataset("labels", data=source[split]["labels"][:])
        rows = f["train/images"].chunks[0]
    out = dptrain("inspect", gzipped)
    check("tiny train: 64 images" in out and out.count("images through a filter") == 1
          and f"training images through a filter (a checksum or compression), {rows} rows a chunk" in out,
          f"h5py's gzip layout: read, noted once ({rows} rows a chunk)")

    out = dptrain("inspect", checkpoint)
    with h5py.File(checkpoint) as f:
        want = f"checkpoint: arch resnet8 epoch {f.attrs['epoch']} step {f.attrs['step']}"
    check(want in out, f"checkpoint: '{want}'")
    with h5py.File(checkpoint) as f:
        shapes = {name: list(f["params"][name].shape) for name in f["params"]}
    listed = [f"  {name} [{', '.join(map(str, shape))}]" for name, shape in shapes.items()]
    check(len(shapes) > 3 and all(line in out.splitlines() for line in listed),
          f"checkpoint: each of the {len(shapes)} parameters' name and shape")

    out = dptrain("inspect", metrics)
    with h5py.File(metrics) as f:
        val_acc = [100 * a for a in f["history/val_acc"][:]]
        final = f["final"].attrs["accuracy"] * 100, f["final"].attrs["loss"]
    check("metrics: 2 epochs" in out and f"val acc {val_acc[1]:.2f}%" in out,
          "metrics: the epochs and the last epoch's val acc")
    check(f"final evaluation: accuracy {final[0]:.2f}% loss {final[1]:.4f} over 24 images" in out,
          "metrics: the final evaluation")

    eval_file = os.path.join(run, "eval.h5")
    out = dptrain("inspect", eval_file)
    with h5py.File(eval_file) as f:
        accuracy, recall = f["eval"].attrs["accuracy"] * 100, f["eval/recall"][:]
    check(f"eval of {checkpoint} on {data}: accuracy {accuracy:.2f}%" in out,
          "eval file: checkpoint, data and accuracy")
    check(f"c9 {100 * recall[9]:.1f}%" in out, "eval file: each class's recall")

    other = os.path.join(tmp, "other.h5")
    with h5py.File(other, "w") as f:
        f["x"] = [1, 2, 3]
    out = dptrain("inspect", other, code=3)
    check("other.h5: not a dptrain dataset, checkpoint, metrics or eval file" in out,
          "another HDF5 file is refused naming it")
