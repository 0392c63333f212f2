"""airbench_runs.py: issue 20's table of many recipe runs, dptrain's beside the PyTorch peer's.

  airbench_runs.py [--dptrain DIR] [--peer PEER.json ...]

DIR holds dptrain run directories (`dptrain train --output-dir DIR --run-name ...`), each with
its metrics.h5; every PEER.json is one `pytorch_airbench94.py --runs N --json` file (one mode:
eager or compiled, bf16 autocast, float16 or float32). Prints one line per run and, per
source, the accuracy's mean, sample std, min and max over every run, and the time to it (median,
mean, min) over the runs after the first, whose time is shown apart: dptrain's first run times
cuDNN's algorithms (the later ones read them from its cache file), a compiled peer's compiles,
as the published airbench leaves out its warm-up run.

Time to accuracy is each run's training plus its final evaluation, the dataset already
loaded, as each side clocks it: dptrain's sum of /history/epoch_time (its last epoch holds the
TTA evaluation; the whitening set-up before epoch 1 and the files written between epochs are
outside it), the peer's train_s + eval_s (its clock starts after its whitening set-up too,
since 2026-12-05; its JSON holds that as whiten_s; it writes nothing). The ratio lines divide
each peer mode's median by dptrain's. Run with a python3 that has h5py and numpy (Debian's
/usr/bin/python3 here)."""
import argparse
import glob
import json
import math
import os
import statistics
import sys

import h5py


def dptrain_runs(directory):
    runs = []
    for path in sorted(glob.glob(os.path.join(directory, "*", "metrics.h5"))):
        with h5py.File(path, "r") as f:
            if "final" not in f:
                sys.exit(f"airbench_runs: {path} has no final evaluation (the run did not end)")
            seed = f["config"].attrs["seed"]
            runs.append({"name": os.path.basename(os.path.dirname(path)),
                         "seed": int(seed.decode() if isinstance(seed, bytes) else seed),
                         "accuracy": float(f["final"].attrs["accuracy"]),
                         "seconds": float(f["history/epoch_time"][:].sum())})
    if not runs:
        sys.exit(f"airbench_runs: no run directory with a metrics.h5 under {directory}")
    return runs


def peer_mode(report):
    precision = ("float16" if report["half"] else
                 "autocast bf16" if report["autocast_bf16"] else "float32")
    return f"peer {'compiled' if report['compile'] else 'eager'} {precision}"


def peer_runs(path):
    with open(path) as f:
        report = json.load(f)
    level = f"tta{report['tta_level']}"
    runs = [{"name": f"run {i}", "seed": r["seed"], "accuracy": r["accuracy"][level],
             "seconds": r["train_s"] + r["eval_s"]} for i, r in enumerate(report["runs"])]
    return peer_mode(report), report.get("device_name", "?"), runs


def steady_seconds(runs):
    """The times of the runs after the first (its own where it is alone)."""
    return [r["seconds"] for r in (runs[1:] if len(runs) > 1 else runs)]


def summary(label, runs):
    acc = [100 * r["accuracy"] for r in runs]
    secs = steady_seconds(runs)
    spread = statistics.stdev(acc) if len(acc) > 1 else math.nan
    first = (f"; first run {runs[0]['seconds']:.3f} s" if len(runs) > 1
             else " (the first run's: no other)")
    return (f"{label}: {len(runs)} runs, accuracy mean {statistics.mean(acc):.2f}% "
            f"(std {spread:.2f}, min {min(acc):.2f}, max {max(acc):.2f}); "
            f"time median {statistics.median(secs):.3f} s, mean {statistics.mean(secs):.3f} s, "
            f"min {min(secs):.3f} s{first}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dptrain", help="directory of dptrain run directories")
    p.add_argument("--peer", nargs="*", default=[], help="pytorch_airbench94.py --json files")
    a = p.parse_args(argv)
    if a.dptrain is None and not a.peer:
        p.error("nothing to sum up: give --dptrain, --peer or both")
    sources = [("dptrain", None, dptrain_runs(a.dptrain))] if a.dptrain else []
    sources += [peer_runs(path) for path in a.peer]
    for label, device, runs in sources:
        print(f"# {label}{' on ' + device if device else ''}")
        for r in runs:
            print(f"{label:>26s}  {r['name']:>10s}  seed {r['seed']:3d}  "
                  f"{100 * r['accuracy']:6.2f}%  {r['seconds']:9.3f} s")
    print()
    for label, _, runs in sources:
        print(summary(label, runs))
    if not a.dptrain:
        return
    ours = statistics.median(steady_seconds(sources[0][2]))
    for label, _, runs in sources[1:]:
        print(f"{label} median time / dptrain's: "
              f"{statistics.median(steady_seconds(runs)) / ours:.2f}x")


if __name__ == "__main__":
    main()
