"""`dptrain pack --format folder` against the same conversion in Python with Pillow, on the same
machine in the same run: a generated ImageFolder tree of N JPEGs (default 20,000; 10 classes,
photo-like content, sizes 96x128 to 150x200, quality 90) packed to 64x64 (--image-size 64:
decode, Pillow's bilinear resize of the shorter side, centre crop) into the checksummed
packed layout. The Pillow side does what torchvision's ImageFolder + Resize(64) +
CenterCrop(64) do per image (Image.open(f).convert("RGB"), resize BILINEAR, crop) and writes
the same HDF5 layout with h5py (one row per chunk, Fletcher-32), in one process.

Images/s per core = images / CPU seconds (user + system) of the packing process: dptrain with
--threads 1 and with every core, Pillow in one process. The packed pixels of both are compared
(they must be identical: same decoder library, same resampling arithmetic). The same again
with JPEG draft decoding (dptrain --jpeg-draft against Pillow's img.draft("RGB", (64, 64))):
libjpeg's IDCT scales a JPEG down by 2, 4 or 8 where it stays at least 64 pixels.
ROUNDS rounds alternate the two (the machine may be shared); the median is reported.

  /usr/bin/python3 tests/bench/bench_pack_folder.py build/app/dptrain [N] [ROUNDS]"""
import os
import resource
import subprocess
import sys
import tempfile
import time

import h5py
import numpy as np
from PIL import Image

SIZE, CLASSES = 64, 10


def arguments(argv):
    """(dptrain, N, ROUNDS), or exit with the usage line: each class needs a file in both splits
    (its first image goes to the test split, generate()), so N is at least 2 x CLASSES."""
    try:
        if not 2 <= len(argv) <= 4:
            raise ValueError("expected build/app/dptrain [N] [ROUNDS]")
        n = int(argv[2]) if len(argv) > 2 else 20000
        rounds = int(argv[3]) if len(argv) > 3 else 3
        if n < 2 * CLASSES or rounds < 1:
            raise ValueError(f"N must be at least {2 * CLASSES} and ROUNDS at least 1")
    except ValueError as e:
        sys.exit(f"bench_pack_folder.py: {e}\nusage: {__doc__.splitlines()[-1].strip()}")
    return argv[1], n, rounds


DPTRAIN, N, ROUNDS = arguments(sys.argv)


def generate(root):
    rng = np.random.default_rng(2026)
    for c in range(CLASSES):
        os.makedirs(os.path.join(root, "train", f"class{c:02d}"))
        os.makedirs(os.path.join(root, "test", f"class{c:02d}"))
    for i in range(N):
        h = int(rng.integers(96, 151))
        w = int(rng.integers(128, 201))
        y, x = np.mgrid[0:h, 0:w]
        base = np.stack([(x * rng.uniform(0.5, 3) + y * rng.uniform(0.5, 3) + rng.uniform(0, 255))
                         % 256 for _ in range(3)], -1)
        img = np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)
        split = "test" if (i // CLASSES) % 6 == 0 else "train"
        Image.fromarray(img).save(os.path.join(root, split, f"class{i % CLASSES:02d}", f"{i:06d}.jpg"),
                                  quality=90)


def files_of(root, split):
    out = []
    for label, c in enumerate(sorted(os.listdir(os.path.join(root, split)))):
        for f in sorted(os.listdir(os.path.join(root, split, c))):
            out.append((os.path.join(root, split, c, f), label))
    return out


def pil_pack(root, output, draft=False):
    """The Pillow conversion, timed by this process's CPU time."""
    cpu0, wall0 = time.process_time(), time.perf_counter()
    with h5py.File(output, "w") as f:
        for split in ("train", "test"):
            files = files_of(root, split)
            images = np.empty((len(files), SIZE, SIZE, 3), np.uint8)
            labels = np.empty(len(files), np.uint8)
            for i, (path, label) in enumerate(files):
                img = Image.open(path)
                if draft:
                    img.draft("RGB", (SIZE, SIZE))
                img = img.convert("RGB")
                w, h = img.size
                nw, nh = (SIZE, int(SIZE * h / w)) if w <= h else (int(SIZE * w / h), SIZE)
                img = img.resize((nw, nh), Image.BILINEAR)
                top, left = int(round((nh - SIZE) / 2.0)), int(round((nw - SIZE) / 2.0))
                images[i] = np.asarray(img)[top:top + SIZE, left:left + SIZE]
                labels[i] = label
            g = f.create_group(split)
            g.create_dataset("images", data=images, chunks=(1, SIZE, SIZE, 3), fletcher32=True)
            g.create_dataset("labels", data=labels, chunks=(min(4096, len(files)),), fletcher32=True)
    return time.process_time() - cpu0, time.perf_counter() - wall0


def dptrain_pack(root, output, threads, *extra):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall0 = time.perf_counter()
    subprocess.run([DPTRAIN, "pack", "--format", "folder", "--source", root, "--output", output,
                    "--image-size", str(SIZE), "--threads", str(threads), *extra],
                   check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - wall0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return cpu, wall


def same_contents(path_a, path_b):
    with h5py.File(path_a) as a, h5py.File(path_b) as b:
        return all(np.array_equal(a[s][d][:], b[s][d][:]) for s in ("train", "test")
                   for d in ("images", "labels"))


def main():
    cores = os.cpu_count()
    with tempfile.TemporaryDirectory() as tmp:
        root = os.path.join(tmp, "jpegs")
        t0 = time.perf_counter()
        generate(root)
        mb = sum(os.path.getsize(p) for s in ("train", "test") for p, _ in files_of(root, s)) / 1e6
        print(f"# {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} {os.uname().nodename}, "
              f"{cores} cores, load {os.getloadavg()[0]:.2f}; {N} JPEGs ({mb:.0f} MB, 96-150 x "
              f"128-200 px, q90) generated in {time.perf_counter() - t0:.0f} s; packed to "
              f"{SIZE}x{SIZE}; {ROUNDS} rounds", flush=True)
        print(f"{'round':<6} {'packer':<26} {'wall s':>8} {'cpu s':>8} {'img/s':>9} {'img/s/core':>11}")
        runs = [("pillow", "pillow (1 process)", lambda o: pil_pack(root, o)),
                ("dptrain", "dptrain --threads 1", lambda o: dptrain_pack(root, o, 1)),
                ("dptrain_all", f"dptrain --threads {cores}", lambda o: dptrain_pack(root, o, cores)),
                ("pillow_draft", "pillow draft", lambda o: pil_pack(root, o, True)),
                ("dptrain_draft", "dptrain -t 1 --jpeg-draft",
                 lambda o: dptrain_pack(root, o, 1, "--jpeg-draft"))]
        rows = {}
        for r in range(1, ROUNDS + 1):
            for tag, name, run in runs:
                cpu, wall = run(os.path.join(tmp, f"{tag}.h5"))
                rows.setdefault(tag, []).append((N / wall, N / cpu))
                print(f"{r:<6} {name:<26} {wall:8.2f} {cpu:8.2f} {N / wall:9.0f} {N / cpu:11.0f}",
                      flush=True)
            for a, b in (("pillow", "dptrain"), ("pillow_draft", "dptrain_draft")):
                if not same_contents(os.path.join(tmp, f"{a}.h5"), os.path.join(tmp, f"{b}.h5")):
                    print(f"FAIL: {b}'s packed pixels differ from {a}'s")
                    sys.exit(1)
        med = {k: (float(np.median([v[0] for v in vs])), float(np.median([v[1] for v in vs])))
               for k, vs in rows.items()}
        pil, one, allc = med["pillow"], med["dptrain"], med["dptrain_all"]
        pil_d, one_d = med["pillow_draft"], med["dptrain_draft"]
        print("# packed pixels identical to Pillow's in every round (also with draft)")
        print(f"# median img/s per core: dptrain {one[1]:.0f} (--threads 1), Pillow {pil[1]:.0f}: "
              f"{one[1] / pil[1]:.2f}x; with draft: dptrain {one_d[1]:.0f}, Pillow {pil_d[1]:.0f}: "
              f"{one_d[1] / pil_d[1]:.2f}x")
        print(f"# median wall img/s: dptrain on {cores} cores {allc[0]:.0f}, Pillow {pil[0]:.0f}: "
              f"{allc[0] / pil[0]:.2f}x")


main()
