"""compare_runs.py A B: every HDF5 file of every run directory under A (metrics.h5 and the
checkpoints) must equal its namesake under B bit for bit: all datasets except wall-clock
columns (/history's times and throughput, the timing fields of each rank's epoch sums) and
the /build and /config attributes. Prints one line per file and IDENTICAL, or each difference
and exits 1. Run with Debian's /usr/bin/python3 (h5py, numpy)."""
import glob
import os
import sys

import h5py
import numpy as np

TIMED = {"epoch_time", "images_per_sec", "step_time_max", "step_time_min"}
EPOCH_TOTALS_EXACT = 4  # loss_sum, correct, samples, steps; the rest are wall times


def skipped(name):
    leaf = name.split("/")[-1]
    return name.startswith(("build", "config")) or leaf in TIMED or leaf.startswith("time_")


def datasets(path):
    out = {}
    with h5py.File(path, "r") as f:
        def take(name, obj):
            if isinstance(obj, h5py.Dataset) and not skipped(name):
                out[name] = obj[()]
        f.visititems(take)
    return out


def comparable(name, value):
    value = np.asarray(value)
    if name.endswith("epoch_totals"):
        value = value[..., :EPOCH_TOTALS_EXACT]
    if value.dtype == object:
        value = np.asarray([str(v) for v in value.ravel()])
    return value


def run_files(top):
    """The HDF5 files of the run directories under `top`, relative to it."""
    return {os.path.relpath(p, top) for p in glob.glob(os.path.join(top, "*", "*.h5"))}


def main(a, b):
    files_a, files_b = run_files(a), run_files(b)
    for top, files in ((a, files_a), (b, files_b)):
        if not files:  # a typo, or runs that wrote nothing: nothing compared is no identity
            sys.exit(f"compare_runs.py: {top}: no run directory with an .h5 file")
    differences = 0
    for rel in sorted(files_b - files_a):
        print(f"MISSING {os.path.join(a, rel)}")
        differences += 1
    for rel in sorted(files_a):
        path_a, path_b = os.path.join(a, rel), os.path.join(b, rel)
        if rel not in files_b:
            print(f"MISSING {path_b}")
            differences += 1
            continue
        da, db = datasets(path_a), datasets(path_b)
        for name in sorted(set(da) ^ set(db)):
            print(f"ONLY IN ONE {path_a}: {name}")
            differences += 1
        for name in sorted(set(da) & set(db)):
            x, y = comparable(name, da[name]), comparable(name, db[name])
            if x.shape != y.shape or x.tobytes() != y.tobytes():
                print(f"DIFFERS {path_a}: {name}")
                differences += 1
        print(f"{rel}: {len(set(da) & set(db))} datasets compared")
    print("IDENTICAL" if differences == 0 else f"{differences} differences")
    return 1 if differences else 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1], sys.argv[2]))
