"""End-to-end integrity: a byte flipped inside any payload dptrain wrote (a packed dataset's
images and labels, a checkpoint's params, buffers and momentum, metrics.h5's history) is
detected by the reader and by `dptrain verify`, many times over; a flip in HDF5's checksummed
metadata fails cleanly, and a flip anywhere outside the payloads either fails with one line or
changes nothing a reader sees (in a group's link storage too, through `inspect`); `--resume
auto` with the newest checkpoint corrupted resumes from the previous one and says so; one from
a checkpoint whose checksums pass on counters that disagree, a class count that does not fit
or statistics that are not numbers stops, naming them, nothing written; files written without
checksums still load, noted once.

usage: test_integrity.py DPTRAIN MPIEXEC"""
import os
import random
import re
import shutil
import sys
import tempfile

import h5py
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from reliability_util import EXIT, Checker, text_attrs, write_tiny_dataset  # noqa: E402


DATA = EXIT["data"]
SEEDS = 10  # flips per payload kind through `dptrain verify` (the C++ tests flip more)
METADATA_FLIPS = 60  # per file kind, anywhere outside the payloads


def folder_bytes(folder):
    """Every file of a run directory (its lock file aside) and its bytes: what must not change."""
    return {n: open(os.path.join(folder, n), "rb").read() for n in sorted(os.listdir(folder))
            if n != ".dptrain.lock"}


def write_idx(folder, train=96, test=32, side=8):
    rng = np.random.default_rng(1)
    os.makedirs(folder)
    for prefix, n in (("train", train), ("t10k", test)):
        with open(os.path.join(folder, f"{prefix}-images-idx3-ubyte"), "wb") as f:
            f.write(bytes([0, 0, 8, 3]) + b"".join(v.to_bytes(4, "big") for v in (n, side, side)))
            f.write(rng.integers(0, 256, n * side * side, dtype=np.uint8).tobytes())
        with open(os.path.join(folder, f"{prefix}-labels-idx1-ubyte"), "wb") as f:
            f.write((0x0801).to_bytes(4, "big") + n.to_bytes(4, "big"))
            f.write((np.arange(n) % 10).astype(np.uint8).tobytes())


def flip_payload(original, dataset, rng, copy):
    """Copies `original` to `copy` with one byte flipped inside a random chunk of `dataset`;
    returns the chunk's first row."""
    with h5py.File(original, "r") as f:
        ds = f[dataset]
        info = ds.id.get_chunk_info(rng.randrange(ds.id.get_num_chunks()))
    flip_at(original, info.byte_offset + rng.randrange(info.size), rng, copy)
    return info.chunk_offset[0]


def flip_at(original, offset, rng, copy):
    if copy != original:
        shutil.copyfile(original, copy)
    with open(copy, "r+b") as g:
        g.seek(offset)
        byte = g.read(1)[0]
        g.seek(offset)
        g.write(bytes([byte ^ rng.randrange(1, 256)]))


def payload_offsets(path):
    """Every byte offset inside a chunk of a chunked dataset of `path`."""
    offsets = set()

    def visit(_, obj):
        if isinstance(obj, h5py.Dataset) and obj.chunks:
            for i in range(obj.id.get_num_chunks()):
                info = obj.id.get_chunk_info(i)
                offsets.update(range(info.byte_offset, info.byte_offset + info.size))
    with h5py.File(path, "r") as f:
        f.visititems(visit)
    return offsets


def contents(path):
    """Everything a reader of `path` sees: each object's attributes and each dataset's values."""
    seen = {}

    def visit(name, obj):
        seen[name + "@"] = sorted((k, repr(v)) for k, v in obj.attrs.items())
        if isinstance(obj, h5py.Dataset):
            seen[name] = repr(obj[()])
    with h5py.File(path, "r") as f:
        visit("/", f)
        f.visititems(visit)
    return seen


def check_metadata_flips(check, path, rng, copy, verify_line, flips):
    """Flips `flips` random bytes outside `path`'s payloads, one at a time: each must fail
    `dptrain verify` with one line (exit 3), or verify and read back exactly as before (a byte
    no reader uses). Never a crash, never a silent change."""
    size, payload, before = os.path.getsize(path), payload_offsets(path), contents(path)
    outside = [o for o in range(size) if o not in payload]
    failed, unused, wrong = 0, 0, []
    for _ in range(flips):
        offset = rng.choice(outside)
        flip_at(path, offset, rng, copy)
        code, line = verify_line(copy)
        if code == DATA and len(line.splitlines()) == 1 and ": corrupted" in line:
            failed += 1
        elif code == 0 and contents(copy) == before:
            unused += 1
        else:
            wrong.append(f"offset {offset}: exit {code}: {line[-160:]}")
    check.record(not wrong and failed > flips // 3,
                 f"{flips} flips outside the payloads of {os.path.basename(path)}: one-line "
                 "failure or nothing changed", f"{failed} failed, {unused} unused; {wrong[:3]}")


def link_storage_offsets(path, deltas=(4, 16, 64, 128)):
    """Bytes inside the blocks that hold a large group's links or attributes (metrics.h5's
    /history links, /config's attributes): fractal heap direct blocks, name-index B-tree
    leaves."""
    data = open(path, "rb").read()
    starts = [m.start() for sig in (b"FHDB", b"BTLF") for m in re.finditer(sig, data)]
    return [s + d for s in starts for d in deltas if s + d < len(data)]


def check_link_storage_flips(check, path, copy):
    """A flip in a group's link storage once made listing the file (dptrain inspect, a resume
    of the run) free HDF5's link table twice and die of a signal: `inspect` and `verify` must
    exit 3 with one error line, or 0 (a byte no reader uses), never anything else; and some
    flips must fail the listing itself (verify names no object then), where the crash was."""
    wrong, failed, in_listing = [], 0, 0
    for offset in link_storage_offsets(path):
        flip_at(path, offset, random.Random(offset), copy)
        for command in ("inspect", "verify"):
            code, err, out, _ = check.run([command, copy])
            said = (err if command == "inspect" else out).strip().splitlines()
            if code == DATA and len(said) == 1 and copy in said[0]:
                failed += 1
                in_listing += command == "verify" and said[0].startswith(f"{copy}: corrupted: ")
            elif code != 0:
                wrong.append(f"{command}, offset {offset}: exit {code}: {(err + out)[-160:]}")
    check.record(not wrong and in_listing > 0,
                 f"flips in {os.path.basename(path)}'s link storage: inspect and verify fail "
                 "with one line or read on", f"{failed} failed, {in_listing} of them in the "
                 f"listing; {wrong[:3]}")


def object_header_offsets(path):
    data = open(path, "rb").read()
    return [m.start() + i for m in re.finditer(b"OHDR", data) for i in range(4, 20)]


with tempfile.TemporaryDirectory() as tmp:
    check = Checker(sys.argv[1], sys.argv[2])
    rng = random.Random(2026)
    path = lambda name: os.path.join(tmp, name)  # noqa: E731
    write_idx(path("idx"))
    packed = path("packed.h5")
    code, err, _, _ = check.run(["pack", "--format", "mnist", "--source", path("idx"),
                                 "--output", packed])
    check.record(code == 0, "pack", err.strip()[-200:])

    def train(data, run, *extra, epochs=3):
        return ["train", "--data", data, "--arch", "resnet8", "--epochs", str(epochs),
                "--batch-size", "16", "--threads", "1", "--output-dir", tmp, "--run-name", run,
                "--crop-padding", "0", *extra]

    def verify_line(*files):
        code, _, out, _ = check.run(["verify", *files])
        return code, out.strip()

    code, line = verify_line(packed)
    check.record(code == 0 and line == f"{packed}: ok, verified (5 datasets checksummed)",
                 "verify: a fresh packed file", f"exit {code}: {line}")

    # Files written before checksums: they train, with one "unverified" note for the file.
    old = path("old.h5")
    write_tiny_dataset(old, train=32, test=16)
    code, err, out, _ = check.run(train(old, "old", epochs=1))
    notes = [l for l in out.splitlines() if "has no checksums" in l and old in l]
    check.record(code == 0 and len(notes) == 1, "an unverified dataset trains, noted once",
                 f"exit {code}, {len(notes)} note(s) {err.strip()[-200:]}")
    code, line = verify_line(old)
    check.record(code == 0 and "ok, unverified: 5 of 5 datasets" in line,
                 "verify: a file without checksums", f"exit {code}: {line}")
    # h5py's default format with Fletcher-32 on every dataset: the attributes and object
    # headers still carry none (superblock version 0), so it is not "verified" either.
    checksummed = path("h5py-fletcher.h5")
    with h5py.File(old, "r") as src, h5py.File(checksummed, "w") as dst:
        def copy(name, obj):
            if isinstance(obj, h5py.Dataset):  # strings fixed-length: a filter needs that
                data = obj[()].astype("S64") if obj.dtype.kind == "O" else obj[()]
                made = dst.create_dataset(name, data=data, chunks=True, fletcher32=True)
            else:
                made = dst.require_group(name)
            for key, value in obj.attrs.items():
                made.attrs[key] = value
        src.visititems(copy)
        for key, value in src.attrs.items():
            dst.attrs[key] = value
    code, line = verify_line(checksummed)
    check.record(code == 0 and line.startswith(f"{checksummed}: ok, unverified: its metadata "
                                               "(superblock version 0"),
                 "verify: h5py's format, every dataset checksummed", f"exit {code}: {line}")

    # The packed dataset: flips in pixels and labels, through training and through verify.
    bad = path("bad-labels.h5")
    flip_payload(packed, "/train/labels", rng, bad)
    check.expect_error("a flipped label byte", train(bad, "badlabels", epochs=1), DATA,
                       [bad + ":/train/labels: checksum mismatch", "restore it"])
    bad = path("bad-images.h5")
    flip_payload(packed, "/train/images", rng, bad)
    check.expect_error("a flipped pixel byte, 2 ranks", train(bad, "badimages", epochs=1), DATA,
                       [bad + ":/train/images: checksum mismatch"], ranks=2, one_line=False,
                       limit=90)
    for dataset in ("/train/images", "/train/labels", "/test/images", "/test/labels"):
        caught = 0
        for _ in range(SEEDS):
            flip_payload(packed, dataset, rng, path("flip.h5"))
            code, line = verify_line(path("flip.h5"))
            caught += code == DATA and f"corrupted at dataset {dataset}: checksum mismatch" in line
        check.record(caught == SEEDS, f"verify: {SEEDS} flips in {dataset}", f"{caught} caught")
    offsets = object_header_offsets(packed)
    caught = 0
    for seed in range(SEEDS):
        flip_at(packed, rng.choice(offsets), rng, path("meta.h5"))
        code_v, line = verify_line(path("meta.h5"))
        clean = code_v == DATA and len(line.splitlines()) == 1
        if seed < 3:  # training fails before step 1 with one line (the run is the slow part)
            code, err, _, _ = check.run(train(path("meta.h5"), "meta", epochs=1), limit=60)
            errors = [l for l in err.splitlines() if "error:" in l]
            clean = clean and code == DATA and len(errors) == 1 and "Traceback" not in err
        caught += clean
    check.record(caught == SEEDS, f"{SEEDS} flips in object headers: exit 3, one line",
                 f"{caught} clean failures")
    check_metadata_flips(check, packed, rng, path("meta.h5"), verify_line, METADATA_FLIPS)

    # Checkpoints: three epochs keeping two; then the newest is corrupted.
    code, err, _, _ = check.run(train(packed, "run", "--keep-checkpoints", "2"), limit=120)
    run = path("run")
    newest, previous = path("run/checkpoint-e0003-s000018.h5"), path("run/checkpoint-e0002-s000012.h5")
    check.record(code == 0 and os.path.exists(newest) and os.path.exists(previous),
                 "a run keeping 2 checkpoints", err.strip()[-300:])
    for group in ("params", "buffers", "optimizer/momentum"):
        with h5py.File(newest, "r") as f:
            names = list(f[group].keys())
        caught = 0
        for _ in range(SEEDS):
            dataset = f"/{group}/{rng.choice(names)}"
            flip_payload(newest, dataset, rng, path("ck.h5"))
            code, line = verify_line(path("ck.h5"))
            caught += code == DATA and f"corrupted at dataset {dataset}: checksum mismatch" in line
        check.record(caught == SEEDS, f"verify: {SEEDS} flips in a checkpoint's /{group}",
                     f"{caught} caught")
    for dataset in ("/history/train_loss", "/history/val_acc", "/steps/loss"):
        flip_payload(path("run/metrics.h5"), dataset, rng, path("m.h5"))
        code, line = verify_line(path("m.h5"))
        check.record(code == DATA and f"corrupted at dataset {dataset}" in line,
                     f"verify: a flip in metrics.h5 {dataset}", f"exit {code}: {line}")

    check_metadata_flips(check, newest, rng, path("meta.h5"), verify_line, METADATA_FLIPS)
    check_metadata_flips(check, path("run/metrics.h5"), rng, path("meta.h5"), verify_line,
                         METADATA_FLIPS)
    check_link_storage_flips(check, path("run/metrics.h5"), path("meta.h5"))

    with h5py.File(newest, "r") as f:
        weight = "/params/" + sorted(f["params"].keys())[0]
    flip_payload(newest, weight, rng, newest)  # checkpoint.h5 is the same file (a hard link)
    check.expect_error("eval of a corrupted checkpoint",
                       ["eval", "--checkpoint", path("run/checkpoint.h5"), "--data", packed],
                       DATA, [path("run/checkpoint.h5") + ":" + weight, "checksum mismatch"])
    code, line = verify_line(previous, newest)
    lines = line.splitlines()
    check.record(code == DATA and len(lines) == 2 and lines[0].startswith(previous + ": ok, verified")
                 and lines[1].startswith(newest + ": corrupted at dataset " + weight),
                 "verify: one line per file, exit 3 when any is corrupted", line)
    code, err, out, _ = check.run(train(packed, "run", "--keep-checkpoints", "2",
                                        "--resume", "auto"), limit=120)
    said = [l for l in out.splitlines() if "--resume auto" in l]
    check.record(code == 0 and any("skipping corrupted checkpoint" in l for l in said)
                 and any("resuming from " + previous in l for l in said),
                 "--resume auto skips the corrupted newest checkpoint", " | ".join(said)
                 or err.strip()[-300:])
    with h5py.File(path("run/metrics.h5"), "r") as f:
        resumed = text_attrs(f["resumes/1"])["checkpoint"]
        epochs = list(f["history/epoch"][:])
    check.record(resumed == previous and epochs == [1, 2, 3],
                 "the resume is recorded from the previous checkpoint", f"{resumed} {epochs}")
    code, line = verify_line(path("run/checkpoint.h5"))
    check.record(code == 0, "the resumed run's new checkpoint verifies", line)
    # Set aside, not left for pruning to count among the kept or a later resume to skip again;
    # checkpoint.h5 was the same file.
    aside = sorted(re.sub(r"-\d{8}-\d{6}(-\d+)?\.h5$", "", n) for n in os.listdir(run)
                   if ".corrupted-" in n)
    check.record(aside == ["checkpoint-e0003-s000018.corrupted", "checkpoint.corrupted"]
                 and any("did not pass verification; set aside as" in l for l in said),
                 "--resume auto sets the corrupted checkpoint aside", f"{aside} | {' | '.join(said)}")

    # A flipped byte in metrics.h5's history: refused before the run starts, nothing written
    # (it would otherwise surface an epoch later, when the row after it is written).
    flipped = path("flipped")
    os.makedirs(flipped)
    shutil.copy(path("run/checkpoint.h5"), os.path.join(flipped, "checkpoint.h5"))
    flip_payload(path("run/metrics.h5"), "/history/train_loss", rng,
                 os.path.join(flipped, "metrics.h5"))
    before = folder_bytes(flipped)
    check.expect_error("--resume auto with a corrupted metrics.h5",
                       train(packed, "flipped", "--resume", "auto", epochs=4), DATA,
                       [os.path.join(flipped, "metrics.h5"), "/history/train_loss",
                        "a resume cannot continue it"])
    after = folder_bytes(flipped)
    check.record(after == before, "its run directory left as it was", sorted(after))

    # Checksums that pass on attributes no run writes (more steps done in the epoch than it has;
    # a class count its tensors and the data do not have; statistics that are not numbers):
    # refused before the run starts, naming them, nothing written; eval refuses the last two.
    for attribute, value, says in (("step_in_epoch", np.int64(99), ["counters disagree",
                                                                    "step_in_epoch 99"]),
                                   ("num_classes", np.int64(5), ["is for 5 classes"]),
                                   ("normalize_mean", "abc", ["normalize_mean", "'abc'"])):
        edited = path(attribute)
        os.makedirs(edited)
        shutil.copy(path("run/checkpoint.h5"), os.path.join(edited, "checkpoint.h5"))
        shutil.copy(path("run/metrics.h5"), os.path.join(edited, "metrics.h5"))
        with h5py.File(os.path.join(edited, "checkpoint.h5"), "r+") as f:
            f.attrs[attribute] = value
        before = folder_bytes(edited)
        check.expect_error(f"--resume auto from a checkpoint whose {attribute} no run writes",
                           train(packed, attribute, "--resume", "auto", epochs=4), DATA,
                           [os.path.join(edited, "checkpoint.h5"), *says])
        after = folder_bytes(edited)
        check.record(after == before, "its run directory left as it was", sorted(after))

    # Every checkpoint corrupted: a clear stop, not a silent start from scratch.
    for name in os.listdir(run):
        if name.startswith("checkpoint") and name.endswith(".h5"):
            flip_payload(os.path.join(run, name), weight, rng, os.path.join(run, name))
    check.expect_error("--resume auto with every checkpoint corrupted",
                       train(packed, "run", "--resume", "auto"), DATA,
                       ["--resume auto", "every checkpoint", "is corrupted"])
    # The only checkpoint truncated (it does not even open): the same stop, the files untouched.
    cut = path("cut")
    os.makedirs(cut)
    shutil.copy(path("run/metrics.h5"), os.path.join(cut, "metrics.h5"))
    with open(previous, "rb") as f:
        head = f.read(os.path.getsize(previous) // 2)
    with open(os.path.join(cut, "checkpoint.h5"), "wb") as f:
        f.write(head)
    before = folder_bytes(cut)
    check.expect_error("--resume auto with the only checkpoint truncated",
                       train(packed, "cut", "--resume", "auto"), DATA,
                       ["--resume auto", "every checkpoint", "is corrupted"])
    after = folder_bytes(cut)
    check.record(after == before, "the run directory left as it was", sorted(after))
    check.finish()
