"""Bad input files: each must stop dptrain (never hang) with one error line naming the file
and the problem, and exit code 3 (data). Covers packed HDF5 files that are truncated, empty,
of the wrong dtype or shape, with a corrupted header, non-finite normalisation floats, statistics
in 0-255 units, a test split with statistics of its own, no statistics, a wrong count, labels
out of range (on 1 and 2 ranks: one line, rank 0's), images through a compressor this HDF5
lacks (on 2 ranks: one line), a truncated checkpoint evaluated and
resumed on 2 ranks (one line), a loop of links as --data and a named pipe as the run's
checkpoint.h5 (each named as what it is), a CIFAR-10 batch of the wrong size, IDX files with a bad magic number, and a
--data path that names different files on different ranks."""
import os
import shutil
import sys
import tempfile

import h5py
import numpy as np

from reliability_util import EXIT, Checker, write_tiny_dataset

check = Checker(sys.argv[1], sys.argv[2])
DATA = EXIT["data"]

with tempfile.TemporaryDirectory() as tmp:
    good = os.path.join(tmp, "good.h5")
    write_tiny_dataset(good, train=64, test=16)

    def train(data, *extra):
        return ["train", "--data", data, "--arch", "resnet8", "--epochs", "1", "--batch-size", "8",
                "--threads", "1", "--max-steps-per-epoch", "2", "--output-dir",
                os.path.join(tmp, "out"), "--overwrite"] + list(extra)

    def variant(name, edit):
        """A copy of the good file, edited with h5py."""
        path = os.path.join(tmp, name)
        shutil.copy(good, path)
        with h5py.File(path, "r+") as f:
            edit(f)
        return path

    # The good file trains: the cases below fail because of what was broken, nothing else.
    code, err, _, took = check.run(train(good))
    check.record(code == 0, "good file trains", f"exit {code} in {took:.1f} s {err.strip()[-300:]}")

    size = os.path.getsize(good)
    truncated = os.path.join(tmp, "truncated.h5")
    with open(good, "rb") as f, open(truncated, "wb") as g:
        g.write(f.read(size // 2))
    check.expect_error("truncated HDF5", train(truncated), DATA, ["truncated.h5"])

    empty = os.path.join(tmp, "empty.h5")
    open(empty, "wb").close()
    check.expect_error("empty file", train(empty), DATA, ["empty.h5"])

    corrupted = os.path.join(tmp, "header.h5")
    shutil.copy(good, corrupted)
    with open(corrupted, "r+b") as f:  # the superblock after its 8-byte signature
        f.seek(8)
        f.write(b"\xff" * 40)
    check.expect_error("corrupted superblock", train(corrupted), DATA, ["header.h5"])

    # Said as what it is: a loop of links is not a missing file.
    loop = os.path.join(tmp, "loop.h5")
    os.symlink(os.path.join(tmp, "loop2.h5"), loop)
    os.symlink(loop, os.path.join(tmp, "loop2.h5"))
    check.expect_error("a loop of links as --data", train(loop), DATA,
                       ["loop.h5", "Too many levels of symbolic links"])
    # The run's checkpoint.h5 a named pipe: named so, before the run starts (exit 2).
    piped = os.path.join(tmp, "out", "piped")
    os.makedirs(piped)
    os.mkfifo(os.path.join(piped, "checkpoint.h5"))
    check.expect_error("a named pipe as the run's checkpoint.h5",
                       ["train", "--data", good, "--arch", "resnet8", "--output-dir",
                        os.path.join(tmp, "out"), "--run-name", "piped", "--resume", "auto"],
                       EXIT["usage"], ["checkpoint.h5 is not a file (a named pipe)"])

    def images_as(dtype):
        def edit(f):
            images = f["train/images"][:]
            del f["train/images"]
            f["train/images"] = images.astype(dtype)
        return edit
    # float32 is a type dptrain reads elsewhere; uint16 one it reads nowhere.
    for dtype in (np.float32, np.uint16):
        name = f"{np.dtype(dtype).name}.h5"
        check.expect_error(f"{np.dtype(dtype).name} images", train(variant(name, images_as(dtype))),
                           DATA, [name, "images are not uint8"])

    def flat_images(f):
        images = f["train/images"][:]
        del f["train/images"]
        f["train/images"] = images.reshape(len(images), -1)
    check.expect_error("wrong rank", train(variant("flat.h5", flat_images)), DATA,
                       ["flat.h5", "rank 2"])

    def wrong_side(f):
        f.attrs["height"] = 9
    check.expect_error("shape disagrees with attributes", train(variant("side.h5", wrong_side)),
                       DATA, ["side.h5", "attributes say"])

    def short_labels(f):
        del f["test/labels"]
        f["test/labels"] = np.zeros(5, np.uint8)
    check.expect_error("label count", train(variant("labels.h5", short_labels)), DATA,
                       ["labels.h5", "labels shape"])

    def big_label(f):
        f["train/labels"][17] = 10
    out_of_range = variant("range.h5", big_label)
    check.expect_error("label out of range", train(out_of_range), DATA,
                       ["range.h5", "label 10 at index 17"])
    # A file every rank finds damaged: one line in the job's log (rank 0's), as for a bad option,
    # not one per rank. (Open MPI 4's mpirun may add an ORTE_ERROR_LOG line of its own.)
    check.expect_error("label out of range on 2 ranks", train(out_of_range), DATA,
                       ["rank 0: error:", "range.h5", "label 10 at index 17"], ranks=2)

    # A compressor HDF5 lacks (h5py's own lzf; the plugin path emptied so that no installed
    # plugin supplies it): found when the file is checked, on every rank alike (it failed at
    # the first batch's read on the loader thread, one line per rank).
    no_plugins = os.path.join(tmp, "no-plugins")
    os.makedirs(no_plugins)

    def lzf_images(f):
        images = f["train/images"][:]
        del f["train/images"]
        f.create_dataset("train/images", data=images, chunks=(1,) + images.shape[1:],
                         compression="lzf", fletcher32=True)
    check.expect_error("images through a filter HDF5 lacks, on 2 ranks",
                       train(variant("lzf.h5", lzf_images)), DATA,
                       ["rank 0: error:", "lzf.h5", "images are stored through the HDF5 filter lzf",
                        "this HDF5 library lacks"], ranks=2,
                       env=dict(os.environ, HDF5_PLUGIN_PATH=no_plugins))

    def nan_mean(f):
        f["train"].attrs["mean"] = [0.5, float("nan"), 0.5]
    check.expect_error("NaN mean", train(variant("nanmean.h5", nan_mean)), DATA,
                       ["nanmean.h5", "mean value nan"])

    def inf_std(f):
        f["train"].attrs["std"] = [0.25, float("inf"), 0.25]
    check.expect_error("Inf std", train(variant("infstd.h5", inf_std)), DATA,
                       ["infstd.h5", "std value inf"])

    def mean_255(f):  # statistics in 0-255 units would flatten every image to about -2
        f["train"].attrs["mean"] = [125.3] * len(f["train"].attrs["mean"])
    check.expect_error("mean in 0-255 units", train(variant("mean255.h5", mean_255)), DATA,
                       ["mean255.h5", "mean value 125.3", "0-255"])

    def own_test_stats(f):  # the test split is normalised with the training statistics
        f["test"].attrs["mean"] = [0.1] * len(f["test"].attrs["mean"])
    check.expect_error("test split with its own mean", train(variant("stats.h5", own_test_stats)),
                       DATA, ["stats.h5", "split 'test'", "training split's"])

    def no_stats(f):
        for obj in (f, f["train"], f["test"]):
            del obj.attrs["mean"]
    check.expect_error("no mean anywhere", train(variant("nomean.h5", no_stats)), DATA,
                       ["nomean.h5", "attribute mean missing"])

    def wrong_count(f):
        f["train"].attrs["count"] = 999
    check.expect_error("count attribute", train(variant("count.h5", wrong_count)), DATA,
                       ["count.h5", "attribute count is 999", "holds 64 images"])

    # CIFAR-10 batch of the wrong size (whole records, one too few) and IDX with a bad magic.
    cifar = os.path.join(tmp, "cifar-10-batches-bin")
    os.makedirs(cifar)
    for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
        with open(os.path.join(cifar, name), "wb") as f:
            f.truncate(9999 * 3073 if name == "data_batch_1.bin" else 10000 * 3073)
    with open(os.path.join(cifar, "batches.meta.txt"), "w") as f:
        f.write("\n".join(f"class{i}" for i in range(10)) + "\n")
    packed = os.path.join(tmp, "cifar.h5")
    check.expect_error("CIFAR batch of the wrong size",
                       ["pack", "--format", "cifar10", "--source", cifar, "--output", packed],
                       DATA, ["data_batch_1.bin", "holds 9999 records"])
    check.record(not os.path.exists(packed) and not os.path.exists(packed + ".tmp"),
                 "failed pack leaves no output", packed)

    idx = os.path.join(tmp, "fashion-idx")
    os.makedirs(idx)
    for prefix, n in (("train", 6), ("t10k", 2)):
        with open(os.path.join(idx, f"{prefix}-images-idx3-ubyte"), "wb") as f:
            f.write(bytes([0, 0, 8, 3, 0, 0, 0, n, 0, 0, 0, 4, 0, 0, 0, 4]) + bytes(16 * n))
        magic = 0x0902 if prefix == "t10k" else 0x0801  # a bad magic in t10k labels
        with open(os.path.join(idx, f"{prefix}-labels-idx1-ubyte"), "wb") as f:
            f.write(magic.to_bytes(4, "big") + n.to_bytes(4, "big") + bytes(n))
    check.expect_error("IDX bad magic",
                       ["pack", "--format", "fashion-mnist", "--source", idx, "--output", packed],
                       DATA, ["t10k-labels-idx1-ubyte", "bad IDX magic number 0x00000902"])

    # A truncated checkpoint, evaluated and resumed on 2 ranks: one line, rank 0's.
    code, err, _, _ = check.run(train(good, "--run-name", "base"))
    check.record(code == 0, "a checkpoint to cut", f"exit {code} {err.strip()[-300:]}")
    cut = os.path.join(tmp, "cut.h5")
    with open(os.path.join(tmp, "out", "base", "checkpoint.h5"), "rb") as f:
        whole = f.read()
    with open(cut, "wb") as f:
        f.write(whole[:len(whole) // 2])
    check.expect_error("truncated checkpoint, eval on 2 ranks",
                       ["eval", "--checkpoint", cut, "--data", good, "--threads", "1",
                        "--output", os.path.join(tmp, "cut-eval.h5")], DATA,
                       ["rank 0: error:", "cut.h5"], ranks=2)
    check.expect_error("truncated checkpoint, --resume on 2 ranks",
                       [a for a in train(good, "--run-name", "from-cut", "--resume", cut)
                        if a != "--overwrite"], DATA,
                       ["rank 0: error:", "cut.h5"], ranks=2)

    # Two ranks given different files: rank 0 names one, rank 1 another (mpirun MPMD).
    other = os.path.join(tmp, "other.h5")
    write_tiny_dataset(other, train=64, test=16, channels=3)
    with h5py.File(other, "r+") as f:
        f["train/labels"][0] = 3  # same shape and size, different content
    check.expect_error("data path differs between ranks", [], DATA,
                       ["option --data", "rank 1 reads " + other, "rank 0's " + good],
                       mpmd=[train(good), train(other)], limit=60)
    # The same file under two paths (a staged copy) is accepted.
    copy = os.path.join(tmp, "copy.h5")
    shutil.copy(good, copy)
    code, err, _, took = check.run([], mpmd=[train(good), train(copy)], limit=120)
    check.record(code == 0, "identical copies on two ranks train",
                 f"exit {code} in {took:.1f} s {err.strip()[-300:]}")

check.finish()
