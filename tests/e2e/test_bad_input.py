"""Bad input to dptrain: each case must end with one clear error line that names the file or
option, a non-zero exit code from the documented set, and no traceback or hang."""
import os
import subprocess
import sys
import tempfile

import h5py
import numpy as np

DPTRAIN = sys.argv[1]
EXIT_USAGE, EXIT_DATA = 2, 3
failures = []


def run(args, expect_code, must_mention, env=None):
    proc = subprocess.run([DPTRAIN] + args, capture_output=True, text=True, timeout=120,
                          env=None if env is None else {**os.environ, **env})
    err = proc.stderr.strip()
    ok = proc.returncode == expect_code and must_mention in err and "dptrain: error:" in err
    ok = ok and len(err.splitlines()) == 1
    print(f"{'ok  ' if ok else 'FAIL'} exit {proc.returncode} (want {expect_code}): {err}")
    if not ok:
        failures.append((args, proc.returncode, err))


def write_packed(path, labels=None, drop=None, images_dtype=np.uint8, test_count=20):
    """A valid small packed dataset, optionally broken."""
    h, w, c = 8, 8, 3
    with h5py.File(path, "w") as f:
        f.attrs["format"] = "dptrain-dataset"
        f.attrs["format_version"] = 1
        f.attrs["name"] = "tiny"
        f.attrs["num_classes"] = 10
        f.attrs["height"], f.attrs["width"], f.attrs["channels"] = h, w, c
        f.attrs["mean"] = [0.5] * c
        f.attrs["std"] = [0.25] * c
        f.create_dataset("class_names", data=[f"c{i}".encode() for i in range(10)],
                         dtype=h5py.string_dtype())
        for split, n in (("train", 20), ("test", test_count)):
            g = f.create_group(split)
            g.attrs["count"] = n
            g.attrs["mean"] = [0.5] * c
            g.attrs["std"] = [0.25] * c
            if drop != f"{split}/images":
                g.create_dataset("images", data=np.zeros((n, h, w, c), images_dtype))
            lab = np.arange(n, dtype=np.uint8) % 10 if labels is None else labels
            g.create_dataset("labels", data=lab)


with tempfile.TemporaryDirectory() as tmp:
    out = os.path.join(tmp, "out")
    base = {"--arch": "resnet8", "--epochs": "1", "--batch-size": "4", "--output-dir": out}

    def train_with(**overrides):
        """`dptrain train` with the base options, overridden (not repeated) by keyword."""
        options = dict(base)
        options.update({"--" + k.replace("_", "-"): v for k, v in overrides.items()})
        return ["train"] + [x for kv in options.items() for x in kv]

    train = train_with()

    # Missing dataset file
    missing = os.path.join(tmp, "nope.h5")
    run(train + ["--data", missing], EXIT_DATA, "nope.h5")
    # A folder (of images, say) where the packed file belongs
    run(train + ["--data", tmp], EXIT_DATA, "a folder, not a dataset file")

    # Not an HDF5 file at all
    junk = os.path.join(tmp, "junk.h5")
    with open(junk, "wb") as f:
        f.write(b"\x89HDF\r\n" + os.urandom(100))
    run(train + ["--data", junk], EXIT_DATA, "junk.h5")

    # HDF5 file without the expected datasets
    no_images = os.path.join(tmp, "no_images.h5")
    write_packed(no_images, drop="train/images")
    run(train + ["--data", no_images], EXIT_DATA, "images")

    # Labels out of range
    bad_labels = os.path.join(tmp, "bad_labels.h5")
    write_packed(bad_labels, labels=np.full(20, 12, np.uint8))
    run(train + ["--data", bad_labels], EXIT_DATA, "label")

    # Truncated CIFAR-10 batch
    cifar = os.path.join(tmp, "cifar-10-batches-bin")
    os.makedirs(cifar)
    record = 1 + 3072
    for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
        with open(os.path.join(cifar, name), "wb") as f:
            f.write(bytes(10000 * record) if name != "data_batch_3.bin" else bytes(5000 * record + 17))
    with open(os.path.join(cifar, "batches.meta.txt"), "w") as f:
        f.write("\n".join(f"class{i}" for i in range(10)) + "\n")
    packed = os.path.join(tmp, "cifar.h5")
    run(["pack", "--format", "cifar10", "--source", cifar, "--output", packed], EXIT_DATA,
        "data_batch_3.bin")
    if os.path.exists(packed) or os.path.exists(packed + ".tmp"):
        failures.append(("failed pack left a file behind", packed))

    # Missing CIFAR-10 batch
    os.remove(os.path.join(cifar, "data_batch_3.bin"))
    run(["pack", "--format", "cifar10", "--source", cifar, "--output", packed], EXIT_DATA,
        "data_batch_3.bin")

    # Options: unknown, bad value, missing required, contradictory
    good = os.path.join(tmp, "good.h5")
    write_packed(good)
    run(train + ["--data", good, "--learning-rate", "0.1"], EXIT_USAGE, "learning-rate")
    run(train_with(data=good, epochs="zero"), EXIT_USAGE, "epochs")
    run(train + ["--data", good, "--lr", "-1"], EXIT_USAGE, "--lr")
    run(train + ["--data", good, "--lr-schedule", "sawtooth"], EXIT_USAGE, "lr-schedule")
    # A warm-up of no whole step (5 steps: int(0.1 x 5) = 0) or epoch (int(0.23 x 2) = 0),
    # refused before the run directory is made.
    runs_before = os.listdir(out) if os.path.isdir(out) else []
    warmup = {"data": good, "lr_schedule": "linear-warmup-decay"}
    run(train_with(**warmup, warmup_fraction="0.1"), EXIT_USAGE,
        "--warmup-fraction: fractions 0 and 0.1 of this run's 5 steps fall on steps 0 and 0")
    run(train_with(**warmup, lr_step_unit="epoch", epochs="2"), EXIT_USAGE,
        "--warmup-fraction: fractions 0 and 0.23 of this run's 2 epochs fall on epochs 0 and 0")
    if (os.listdir(out) if os.path.isdir(out) else []) != runs_before:
        failures.append(("a refused warm-up left a run directory", os.listdir(out)))
    run(train_with(data=good, arch="resnet9000"), EXIT_USAGE, "resnet9000")
    run(train + ["--data", good, "--nesterov", "true", "--momentum", "0"], EXIT_USAGE, "nesterov")
    run(["train", "--arch", "resnet8"], EXIT_USAGE, "--data")
    run(train + ["--data", good, "--precision", "fp16"], EXIT_USAGE, "precision")
    run(train + ["--data", good, "--device", "cpu", "--precision", "tf32"], EXIT_USAGE,
        "precision")
    run(["bench", "--device", "cpu", "--precision", "tf32"], EXIT_USAGE, "precision")
    # --deterministic as train's, a bare flag or a value, on every command (the precision and
    # the missing checkpoint are then the only errors)
    run(["bench", "--deterministic", "--device", "cpu", "--precision", "tf32"], EXIT_USAGE,
        "precision")
    run(["bench", "--deterministic", "true", "--device", "cpu", "--precision", "tf32"],
        EXIT_USAGE, "precision")
    # bf16 on a CPU without bf16 arithmetic (oneDNN capped below AVX512-BF16 here)
    no_bf16 = {"ONEDNN_MAX_CPU_ISA": "AVX512_CORE"}
    run(train + ["--data", good, "--device", "cpu", "--precision", "bf16"], EXIT_USAGE,
        "--precision bf16", no_bf16)
    run(["bench", "--device", "cpu", "--precision", "bf16"], EXIT_USAGE, "--precision bf16",
        no_bf16)
    run(["frobnicate"], EXIT_USAGE, "frobnicate")
    # srun without MPI support: a singleton Slurm calls task 2 of 4 stops alone, in one line
    run(["inspect", good], EXIT_USAGE, "Slurm started this process as task 2 of 4",
        {"SLURM_NTASKS": "4", "SLURM_PROCID": "2"})
    cfg = os.path.join(tmp, "bad.cfg")
    with open(cfg, "w") as f:
        f.write("epochs = 2\nwarp-speed = 9\n")
    run(train + ["--data", good, "--config", cfg], EXIT_USAGE, "warp-speed")
    run(["eval", "--checkpoint", os.path.join(tmp, "none.h5"), "--data", good], EXIT_DATA,
        "none.h5")
    run(["eval", "--deterministic", "false", "--checkpoint", os.path.join(tmp, "none.h5"),
         "--data", good], EXIT_DATA, "none.h5")

    # A split without images: nothing to train on, and an evaluation of 0 of 0 images
    empty_test = os.path.join(tmp, "empty_test.h5")
    write_packed(empty_test, test_count=0)
    run(train + ["--data", empty_test], EXIT_DATA, "empty_test.h5: split 'test': holds no images")

    # A metrics file whose history columns disagree in length (inspect indexed past one)
    finished = subprocess.run([DPTRAIN] + train_with(data=good, run_name="done", threads="1"),
                              capture_output=True, text=True, timeout=120)
    metrics = os.path.join(out, "done", "metrics.h5")
    if finished.returncode != 0:
        failures.append(("a run to inspect failed", finished.stderr[-300:]))
    else:
        with h5py.File(metrics, "r+") as f:
            f["history/val_acc"].resize((0,))
        run(["inspect", metrics], EXIT_DATA, "history/val_acc has 0 rows, history/epoch 1")

if failures:
    print(f"{len(failures)} case(s) failed:")
    for f in failures:
        print("  ", f)
    sys.exit(1)
print("all bad-input cases give one clear line and the documented exit code")
