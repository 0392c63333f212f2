"""Test of tests/bench/airbench_runs.py (the table of issue 20's GPU runs) on what dptrain and
the PyTorch peer really write: two dptrain runs of the airbench94 config and a two-run peer
JSON, on the tiny dataset of test_airbench94_peer.py (batch 32, 2 epochs), and a peer JSON
made by hand (runs apart in accuracy and time, the first slow, TTA levels apart). Each printed
run's accuracy and time must be the run's own (dptrain's final accuracy and the sum of its
epoch times; the peer's accuracy at its TTA level and train + eval seconds), each summary's
accuracy mean and std must be the runs', the time median the runs' after the first (shown
apart), the ratio the medians'; a peer sums up alone; a run directory without a final
evaluation is refused with one line.

usage: test_airbench_runs.py DPTRAIN WORKDIR"""
import json
import os
import shutil
import statistics
import subprocess
import sys

import h5py

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import test_airbench94_peer as tiny  # noqa: E402

CONFIG = os.path.join(HERE, "..", "..", "jobs", "cifar10_94_fast.cfg")
SUMMARY = os.path.join(HERE, "airbench_runs.py")


def check(cond, what):
    if not cond:
        raise SystemExit(f"FAIL: {what}")
    print(f"ok: {what}")


def run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    program = os.path.basename(cmd[1] if cmd[0] == sys.executable else cmd[0])
    check(r.returncode == 0, f"{program} exits 0 ({r.stderr.strip()[-300:]})")
    return r.stdout


def dptrain_runs(dptrain, data, runs_dir):
    for seed in (3, 4):
        run([dptrain, "train", "--config", CONFIG, "--data", data, "--seed", str(seed),
             "--batch-size", str(tiny.BATCH), "--epochs", "2", "--whiten-init", "100",
             "--threads", "2", "--device", "cpu", "--output-dir", runs_dir,
             "--run-name", f"s{seed}"])
    wanted = {}
    for name in ("s3", "s4"):
        with h5py.File(os.path.join(runs_dir, name, "metrics.h5"), "r") as f:
            wanted[name] = (100 * float(f["final"].attrs["accuracy"]),
                            float(f["history/epoch_time"][:].sum()))
    return wanted


def peer_runs(data, path):
    run([sys.executable, os.path.join(HERE, "pytorch_airbench94.py"), "--data", data,
         "--batch-size", str(tiny.BATCH), "--epochs", "2", "--threads", "2", "--runs", "2",
         "--seed", "7", "--json", path])
    with open(path) as f:
        return {f"run {i}": (100 * r["accuracy"]["tta2"], r["train_s"] + r["eval_s"])
                for i, r in enumerate(json.load(f)["runs"])}


def printed_runs(out, label):
    """{run name: (accuracy %, seconds)} from the table's lines of `label`."""
    rows = {}
    for line in out.splitlines():
        text = line.strip()
        if text.startswith(label + " ") and " seed " in text:
            name, tail = text[len(label):].split(" seed ")
            fields = tail.split()  # seed, accuracy %, seconds, "s"
            rows[name.strip()] = (float(fields[1].rstrip("%")), float(fields[2]))
    return rows


def check_runs(out, label, wanted, what):
    """The table's lines of `label` are `wanted`'s runs, to their printed digits."""
    got = printed_runs(out, label)
    check(got.keys() == wanted.keys() and all(
        abs(got[k][0] - wanted[k][0]) < 0.006 and abs(got[k][1] - wanted[k][1]) < 6e-4
        for k in wanted), f"{what}: {got} vs {wanted}")


def steady_median(wanted):
    """The median time of the runs after the first (wanted's keys in run order)."""
    return statistics.median([s for _, s in wanted.values()][1:])


def check_summary(out, label, wanted):
    acc = [a for a, _ in wanted.values()]
    first = next(iter(wanted.values()))[1]
    line = next(l for l in out.splitlines() if l.startswith(f"{label}: "))
    expect = (f"{label}: {len(acc)} runs, accuracy mean {statistics.mean(acc):.2f}% "
              f"(std {statistics.stdev(acc):.2f}, min {min(acc):.2f}, max {max(acc):.2f}); "
              f"time median {steady_median(wanted):.3f} s")
    check(line.startswith(expect) and line.endswith(f"; first run {first:.3f} s"),
          f"{label}'s summary is its runs', the first one's time apart ({line})")


def check_median_and_level(workdir, runs_dir, ours):
    """A compiled peer's three runs by hand, run 0 slow (its compilation), TTA-2 accuracies
    apart from TTA-0's: the table takes the file's TTA level and the median time of runs 1 and
    2, and sums up a peer alone."""
    path = os.path.join(workdir, "compiled.json")
    times, tta2 = ((60.0, 2.0), (3.0, 0.25), (3.5, 0.25)), (0.941, 0.9395, 0.9432)
    runs = [{"seed": i, "train_s": t, "eval_s": e,
             "accuracy": {"tta0": 0.5 + i / 100, "tta1": 0.6, "tta2": tta2[i]}}
            for i, (t, e) in enumerate(times)]
    with open(path, "w") as f:
        json.dump({"compile": True, "half": True, "autocast_bf16": False, "tta_level": 2,
                   "device_name": "by hand", "runs": runs}, f)
    wanted = {f"run {i}": (100 * tta2[i], t + e) for i, (t, e) in enumerate(times)}
    label = "peer compiled float16"
    out = run([sys.executable, SUMMARY, "--dptrain", runs_dir, "--peer", path])
    check_runs(out, label, wanted, "the TTA level the file names, each run's time")
    check_summary(out, label, wanted)
    ratio = 3.5 / steady_median(ours)  # runs 1 and 2: 3.25 s and 3.75 s
    check(f"{label} median time / dptrain's: {ratio:.2f}x" in out,
          f"the ratio of the medians after the first runs ({ratio:.2f}x)")
    alone = run([sys.executable, SUMMARY, "--peer", path])
    check(f"{label}: 3 runs" in alone and "dptrain" not in alone,
          "a peer alone is summed up without dptrain's lines")


def main():
    dptrain, workdir = sys.argv[1], sys.argv[2]
    shutil.rmtree(workdir, ignore_errors=True)
    os.makedirs(workdir)
    data = os.path.join(workdir, "tiny32.h5")
    tiny.write_dataset(data)
    runs_dir = os.path.join(workdir, "runs")
    ours = dptrain_runs(dptrain, data, runs_dir)
    peer_json = os.path.join(workdir, "peer.json")
    theirs = peer_runs(data, peer_json)
    out = run([sys.executable, SUMMARY, "--dptrain", runs_dir, "--peer", peer_json])
    peer_label = "peer eager float32"
    for label, wanted in (("dptrain", ours), (peer_label, theirs)):
        check_runs(out, label, wanted, f"{label}'s runs as they ended")
        check_summary(out, label, wanted)
    ratio = steady_median(theirs) / steady_median(ours)
    check(f"{peer_label} median time / dptrain's: {ratio:.2f}x" in out,
          f"the ratio of the medians ({ratio:.2f}x)")
    check_median_and_level(workdir, runs_dir, ours)
    # A run that did not end (no /final) is refused, naming its file.
    with h5py.File(os.path.join(runs_dir, "s4", "metrics.h5"), "a") as f:
        del f["final"]
    r = subprocess.run([sys.executable, SUMMARY, "--dptrain", runs_dir], capture_output=True,
                       text=True, timeout=60)
    lines = r.stderr.strip().splitlines()
    check(r.returncode != 0 and len(lines) == 1 and "s4/metrics.h5" in lines[0],
          f"a run without its final evaluation: one line naming it ({lines})")
    print("all airbench_runs checks passed")


if __name__ == "__main__":
    main()
