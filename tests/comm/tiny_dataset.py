"""What the tests running dptrain share across folders: a small packed dataset (the layout of
lib/data/packed_format.h: random 8x8 RGB images, 10 classes, a train size that 2 and 3 ranks
do not divide), the command lines (mpirun for tests; dptrain alone or under it) and running
them, and dptrain's HDF5 string attributes read as str."""
import subprocess

import h5py
import numpy as np


def write_tiny_dataset(path, train=203, test=40, side=8, channels=3, classes=10):
    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as f:
        f.attrs["format"] = "dptrain-dataset"
        f.attrs["format_version"] = 1
        f.attrs["name"] = "tiny"
        f.attrs["num_classes"] = classes
        f.attrs["height"], f.attrs["width"], f.attrs["channels"] = side, side, channels
        f.attrs["mean"] = [0.5] * channels
        f.attrs["std"] = [0.25] * channels
        f.create_dataset("class_names", data=[f"c{i}".encode() for i in range(classes)],
                         dtype=h5py.string_dtype())
        for split, count in (("train", train), ("test", test)):
            g = f.create_group(split)
            g.attrs["count"] = count
            g.attrs["mean"] = [0.5] * channels
            g.attrs["std"] = [0.25] * channels
            g.create_dataset("images", data=rng.integers(0, 256, (count, side, side, channels),
                                                         dtype=np.uint8))
            g.create_dataset("labels", data=(np.arange(count) % classes).astype(np.uint8))


def mpirun_command(mpiexec, ranks, program_args):
    """mpirun for tests: oversubscribed, one thread and no core binding per rank."""
    return [mpiexec, "--oversubscribe", "--allow-run-as-root", "--bind-to", "none",
            "-x", "OMP_NUM_THREADS=1", "-np", str(ranks)] + program_args


def dptrain_command(dptrain, mpiexec, ranks, args):
    """dptrain ARGS: alone on 1 rank, as a user runs it; under mpirun_command on more."""
    program = [dptrain] + args
    return program if ranks == 1 else mpirun_command(mpiexec, ranks, program)


def run_command(command, timeout=240):
    """Runs COMMAND to its end: (exit code, stdout, stderr)."""
    proc = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    return proc.returncode, proc.stdout, proc.stderr


def text_attrs(node):
    """An HDF5 object's attributes, with dptrain's fixed-length strings (bytes in h5py) as str."""
    return {k: v.decode() if isinstance(v, bytes) else v for k, v in node.attrs.items()}
