"""`dptrain pack --format folder` against Pillow (Debian's python3-pil), the independent reader:
image folders generated here in several formats, colour types and sizes are packed, and the
packed pixels must equal Pillow's decoding byte for byte (Image.open(f).convert("RGB") or
convert("L"), as torchvision's ImageFolder loads them), in ImageFolder's class order; the
--test-fraction split is stratified and reproducible; --image-size agrees with Pillow's
bilinear Resize + CenterCrop within a stated tolerance; every bad input gives one line naming
the file or folder, exit 3 and nothing at the output path; --skip-bad packs the rest but never
leaves a class empty; an option only another format reads is refused (exit 2); a --threads
the system will not start packs on the threads it did (not an abort)."""
import io
import os
import re
import resource
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import zlib

import h5py
import numpy as np
from PIL import Image, PngImagePlugin

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from process_limits import under_process_limit  # noqa: E402

DPTRAIN = sys.argv[1]
EXIT_DATA, EXIT_USAGE = 3, 2
failures = []

# --image-size against Pillow's BILINEAR (what torchvision's Resize does to PIL images):
# image_resize.cpp is Pillow's algorithm in its fixed point, so no difference is allowed.
RESIZE_MAX_DIFF, RESIZE_MEAN_DIFF = 0, 0.0


def check(cond, what):
    print(("ok:   " if cond else "FAIL: ") + what)
    if not cond:
        failures.append(what)


def picture(rng, h, w, channels=3):
    """A photo-like image: smooth gradients plus noise, distinct for every call."""
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([(x * rng.uniform(1, 8) + y * rng.uniform(1, 8) + rng.uniform(0, 255)) % 256
                     for _ in range(channels)], -1)
    img = np.clip(base + rng.normal(0, 25, base.shape), 0, 255).astype(np.uint8)
    return img[..., 0] if channels == 1 else img


def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def write_png_rgb16(path, arr):
    """A 16-bit RGB PNG (Pillow cannot write one): plain zlib-compressed rows, filter 0."""
    h, w, _ = arr.shape
    rows = b"".join(b"\x00" + arr[y].astype(">u2").tobytes() for y in range(h))
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0))
                + png_chunk(b"IDAT", zlib.compress(rows)) + png_chunk(b"IEND", b""))


ADAM7 = [(0, 0, 8, 8), (0, 4, 8, 8), (4, 0, 8, 4), (0, 2, 4, 4), (2, 0, 4, 2), (0, 1, 2, 2),
         (1, 0, 2, 1)]  # (row start, column start, row step, column step) of the 7 passes


def write_png_interlaced(path, arr):
    """An 8-bit RGB Adam7-interlaced PNG (Pillow cannot write one): each pass's reduced image,
    rows with filter 0, one zlib stream."""
    h, w, _ = arr.shape
    data = b""
    for y0, x0, dy, dx in ADAM7:
        sub = arr[y0::dy, x0::dx]
        if sub.size:
            data += b"".join(b"\x00" + row.tobytes() for row in sub)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 1))
                + png_chunk(b"IDAT", zlib.compress(data)) + png_chunk(b"IEND", b""))


def save_variant(path_stem, kind, rng, h, w):
    """Writes one image of the given kind; returns the file name."""
    if kind == "jpeg420":
        Image.fromarray(picture(rng, h, w)).save(path_stem + ".jpg", quality=90)
    elif kind == "jpeg444":
        Image.fromarray(picture(rng, h, w)).save(path_stem + ".jpg", quality=95, subsampling=0)
    elif kind == "jpeg422":
        Image.fromarray(picture(rng, h, w)).save(path_stem + ".jpeg", quality=85, subsampling=1)
    elif kind == "jpeg_progressive":
        Image.fromarray(picture(rng, h, w)).save(path_stem + ".jpg", quality=90, progressive=True)
    elif kind == "jpeg_grey":
        Image.fromarray(picture(rng, h, w, 1)).save(path_stem + ".JPG", quality=90)
    elif kind == "png_rgb":
        Image.fromarray(picture(rng, h, w)).save(path_stem + ".png")
    elif kind == "png_rgba":
        rgba = np.concatenate([picture(rng, h, w), picture(rng, h, w, 1)[..., None]], -1)
        Image.fromarray(rgba, "RGBA").save(path_stem + ".png")
    elif kind == "png_grey":
        Image.fromarray(picture(rng, h, w, 1)).save(path_stem + ".png")
    elif kind == "png_grey_alpha":
        la = np.stack([picture(rng, h, w, 1), picture(rng, h, w, 1)], -1)
        Image.fromarray(la, "LA").save(path_stem + ".png")
    elif kind == "png_palette":
        img = Image.fromarray(picture(rng, h, w)).convert("P", palette=Image.ADAPTIVE, colors=16)
        img.save(path_stem + ".png", transparency=0)
    elif kind == "png_1bit":
        Image.fromarray(picture(rng, h, w, 1) > 128).save(path_stem + ".png")
    elif kind == "png_grey16":
        Image.fromarray(rng.integers(0, 65536, (h, w)).astype(np.uint16)).save(path_stem + ".png")
    elif kind == "png_rgb16":
        write_png_rgb16(path_stem + ".png", rng.integers(0, 65536, (h, w, 3)))
    elif kind == "png_interlaced":
        write_png_interlaced(path_stem + ".png", picture(rng, h, w))
    else:
        raise ValueError(kind)
    return [n for n in os.listdir(os.path.dirname(path_stem))
            if n.startswith(os.path.basename(path_stem) + ".")][0]


KINDS = ["jpeg420", "jpeg444", "jpeg422", "jpeg_progressive", "jpeg_grey", "png_rgb", "png_rgba",
         "png_grey", "png_grey_alpha", "png_palette", "png_1bit", "png_grey16", "png_rgb16",
         "png_interlaced"]


def pil_pixels(path, channels=3):
    """What ImageFolder's loader gives: Image.open(f).convert("RGB") (or "L"). 16-bit greyscale
    is the documented exception: dptrain keeps the high byte, Pillow's convert clips at 255."""
    img = Image.open(path)
    if img.mode in ("I;16", "I;16B", "I"):
        grey = (np.asarray(img).astype(np.uint32) >> 8).astype(np.uint8)
        return grey if channels == 1 else np.repeat(grey[..., None], 3, -1)
    arr = np.asarray(img.convert("RGB" if channels == 3 else "L"))
    return arr if channels == 3 else arr


def make_split(root, classes, per_class, rng, size=(20, 24), kinds=KINDS):
    """root/<class>/NNN.<ext> in several formats; returns {class: [file names]}."""
    made = {}
    for ci, name in enumerate(classes):
        os.makedirs(os.path.join(root, name), exist_ok=True)
        made[name] = [save_variant(os.path.join(root, name, f"{i:03d}"),
                                   kinds[(ci * per_class + i) % len(kinds)], rng, *size)
                      for i in range(per_class)]
    return made


def expected(root, classes, channels=3):
    """Pixels and labels in ImageFolder's order: classes sorted, files sorted within a class."""
    images, labels = [], []
    for label, name in enumerate(sorted(classes)):
        for f in sorted(os.listdir(os.path.join(root, name))):
            images.append(pil_pixels(os.path.join(root, name, f), channels))
            labels.append(label)
    images = np.stack(images)
    return (images[..., None] if channels == 1 else images), np.array(labels, np.uint8)


def pack(source, output, *extra, expect=0):
    proc = subprocess.run([DPTRAIN, "pack", "--format", "folder", "--source", source, "--output",
                           output, *extra], capture_output=True, text=True, timeout=300)
    if proc.returncode != expect:
        print(proc.stdout, proc.stderr)
    return proc


def text(value):
    """dptrain's fixed-length string attributes (bytes in h5py, scalar or array) as str."""
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.ndarray) and value.dtype.kind == "S":
        return np.array([v.decode() for v in value], dtype=object)
    return value


def read(path):
    with h5py.File(path, "r") as f:
        out = {s: (f[s]["images"][:], f[s]["labels"][:]) for s in ("train", "test")}
        out["attrs"] = {k: text(v) for k, v in f.attrs.items()}
        out["class_names"] = [n.decode() if isinstance(n, bytes) else n for n in f["class_names"][:]]
        out["checksummed"] = all(f[s][d].fletcher32 for s in ("train", "test")
                                 for d in ("images", "labels"))
    return out


def bad_case(tmp, source, what, must_mention, *extra, expect=EXIT_DATA):
    out = os.path.join(tmp, "bad.h5")
    proc = pack(source, out, *extra, expect=expect)
    err = proc.stderr.strip()
    ok = (proc.returncode == expect and len(err.splitlines()) == 1 and "dptrain: error:" in err
          and must_mention in err and not os.path.exists(out) and not os.path.exists(out + ".tmp"))
    check(ok, f"{what}: exit {proc.returncode}, one line naming {must_mention!r}, no output "
              f"({err})")


def test_exact_pixels(tmp, rng):
    src = os.path.join(tmp, "exact")
    classes = ["zebra", "Apple", "mango"]  # created out of order; sorted: Apple, mango, zebra
    make_split(os.path.join(src, "train"), classes, 14, rng)
    make_split(os.path.join(src, "test"), classes, 5, rng)
    interlaced = os.path.join(src, "train", "mango", "013.png")
    check(Image.open(interlaced).info.get("interlace") == 1, "the generated folder has an interlaced PNG")
    out = os.path.join(tmp, "exact.h5")
    proc = pack(src, out, "--threads", "3", "--progress-every", "0")
    check(proc.returncode == 0, f"folder of {len(KINDS)} kinds of JPEG/PNG packed")
    got = read(out)
    check(got["class_names"] == ["Apple", "mango", "zebra"], "classes in sorted (ImageFolder) order")
    for split in ("train", "test"):
        want_images, want_labels = expected(os.path.join(src, split), classes)
        images, labels = got[split]
        check(images.shape == want_images.shape and np.array_equal(images, want_images),
              f"{split}: every pixel equals Pillow's convert('RGB') ({images.shape})")
        check(np.array_equal(labels, want_labels), f"{split}: labels in class-major file order")
    a = got["attrs"]
    check(a["height"] == 20 and a["width"] == 24 and a["channels"] == 3 and a["num_classes"] == 3,
          "shape and class count attributes")
    train = got["train"][0].astype(np.float64) / 255
    check(np.allclose(a["mean"], train.mean((0, 1, 2))) and np.allclose(a["std"], train.std((0, 1, 2))),
          "mean/std of the train images")
    check(got["checksummed"], "every split dataset carries Fletcher-32")
    counts = list(a["source_counts"])
    check(counts[0] == "train/Apple 14" and counts[-1] == "test/zebra 5" and len(counts) == 6,
          f"per-class counts recorded ({counts[0]} ... {counts[-1]})")
    sources = list(a["sources"])
    check(len(sources) == 1 and sources[0].startswith("exact/ ") and len(sources[0]) == 7 + 64,
          f"source tree digest recorded ({sources[0]})")
    check("skipped" not in a, "nothing skipped, no 'skipped' attribute")
    lines = [l for l in proc.stdout.splitlines() if "files/s" in l]
    check(len(lines) >= 1 and lines[-1].split()[1] == "57/57",
          f"plain progress lines when stderr is not a terminal ({lines[-1] if lines else None})")

    # A changed byte anywhere in the tree changes the digest.
    victim = os.path.join(src, "test", "mango", sorted(os.listdir(os.path.join(src, "test", "mango")))[0])
    Image.open(victim).convert("RGB").save(victim + ".png")
    os.replace(victim + ".png", victim)
    out2 = os.path.join(tmp, "exact2.h5")
    pack(src, out2)
    check(list(read(out2)["attrs"]["sources"]) != sources, "a changed source file changes the digest")

    out1 = os.path.join(tmp, "grey.h5")
    check(pack(src, out1, "--channels", "1").returncode == 0, "--channels 1 packed")
    got = read(out1)
    for split in ("train", "test"):
        want_images, _ = expected(os.path.join(src, split), classes, channels=1)
        check(np.array_equal(got[split][0], want_images),
              f"{split}: --channels 1 equals Pillow's convert('L') ({got[split][0].shape})")


def test_split(tmp, rng):
    src = os.path.join(tmp, "flat")
    counts = {"b": 11, "a": 8, "c": 21}
    for name, n in counts.items():
        make_split(src, [name], n, rng, kinds=["jpeg420", "png_rgb"])
    outs = {}
    for tag, seed in (("s7", "7"), ("s7again", "7"), ("s8", "8")):
        outs[tag] = os.path.join(tmp, f"{tag}.h5")
        check(pack(src, outs[tag], "--test-fraction", "0.25", "--seed", seed).returncode == 0,
              f"DIR/<class> split with --test-fraction 0.25 --seed {seed}")
    got = {k: read(v) for k, v in outs.items()}
    for split in ("train", "test"):
        check(all(np.array_equal(got["s7"][split][i], got["s7again"][split][i]) for i in (0, 1)),
              f"same seed, same {split} split")
    check(not np.array_equal(got["s7"]["test"][0], got["s8"]["test"][0]), "another seed, another split")
    # Boost would read -1 into the unsigned seed as 2^64 - 1, the split of another seed.
    negative = os.path.join(tmp, "negative.h5")
    proc = pack(src, negative, "--test-fraction", "0.25", "--seed", "-1", expect=EXIT_USAGE)
    check(proc.returncode == EXIT_USAGE and "option --seed: '-1' must be a whole number" in proc.stderr
          and not os.path.exists(negative), f"--seed -1 refused ({proc.stderr.strip()})")
    # Every source image lands in exactly one split, under its own class.
    source = {}
    for label, name in enumerate(sorted(counts)):
        for f in os.listdir(os.path.join(src, name)):
            source[pil_pixels(os.path.join(src, name, f)).tobytes()] = label
    for tag in ("s7", "s8"):
        seen = []
        for split in ("train", "test"):
            for img, label in zip(*got[tag][split]):
                seen.append(img.tobytes())
                if source.get(img.tobytes()) != label:
                    check(False, f"{tag}: a packed image matches its source and class")
        check(sorted(seen) == sorted(source), f"{tag}: train + test is the folder, no image twice")
        test_counts = np.bincount(got[tag]["test"][1], minlength=3)
        want = [int(np.floor(0.25 * counts[n] + 0.5)) for n in sorted(counts)]
        check(list(test_counts) == want, f"{tag}: stratified, round(0.25 n) per class {want}")
    # A class too small for one test image at this fraction packs, with none in test.
    small = os.path.join(tmp, "small_class")
    make_split(small, ["a"], 10, rng, kinds=["jpeg420"])
    make_split(small, ["b"], 3, rng, kinds=["jpeg420"])
    out = os.path.join(tmp, "small.h5")
    proc = pack(small, out, "--test-fraction", "0.1")
    counts = list(read(out)["attrs"]["source_counts"]) if proc.returncode == 0 else proc.stderr
    check(proc.returncode == 0 and "test/b 0" in counts and "test/a 1" in counts
          and "no test image to 1 of the 2 classes (too few images): b" in proc.stdout,
          f"a class of 3 at --test-fraction 0.1: packed, none of it in test, said in the log "
          f"({counts})")
    # Half up in decimal: 0.29 x 50 = 14.5 takes 15 (the double product is 14.499999999999998).
    half = os.path.join(tmp, "half")
    make_split(half, ["a"], 50, rng, kinds=["png_rgb"])
    make_split(half, ["b"], 4, rng, kinds=["png_rgb"])
    proc = pack(half, out, "--test-fraction", "0.29")
    counts = list(read(out)["attrs"]["source_counts"]) if proc.returncode == 0 else proc.stderr
    check(proc.returncode == 0 and "test/a 15" in counts and "test/b 1" in counts,
          f"--test-fraction 0.29 of 50 images: round(14.5) = 15 in test ({counts})")
    # Nor does a fraction that rounds a whole class into test: each class keeps a train image.
    make_split(small, ["c"], 1, rng, kinds=["jpeg420"])
    proc = pack(small, out, "--test-fraction", "0.5")
    counts = list(read(out)["attrs"]["source_counts"]) if proc.returncode == 0 else proc.stderr
    check(proc.returncode == 0 and "train/c 1" in counts and "test/c 0" in counts
          and "test/b 2" in counts and "train/b 1" in counts,
          f"classes of 3 and 1 at --test-fraction 0.5: one train image each kept ({counts})")
    # A class that happens to be called "train" (CIFAR-100 has one): a folder of images, not a
    # split of class folders, so the layout is DIR/<class>.
    named = os.path.join(tmp, "class_named_train")
    make_split(named, ["bus", "train"], 4, rng, kinds=["jpeg420"])
    proc = pack(named, out, "--test-fraction", "0.25")
    names = read(out)["class_names"] if proc.returncode == 0 else proc.stderr
    check(proc.returncode == 0 and names == ["bus", "train"],
          f"a class called 'train' beside another: packed as two classes ({names})")


def test_resize(tmp, rng):
    src = os.path.join(tmp, "sizes")
    sizes = [(40, 30), (30, 50), (64, 64), (17, 23), (33, 100), (16, 16), (50, 45), (16, 300),
             (241, 97), (9, 12)]
    for ci, name in enumerate(["x", "y"]):
        for i, (h, w) in enumerate(sizes):
            os.makedirs(os.path.join(src, "train", name), exist_ok=True)
            kind = ["jpeg420", "png_rgb", "png_grey"][(i + ci) % 3]
            save_variant(os.path.join(src, "train", name, f"{i:02d}"), kind, rng, h, w)
        os.makedirs(os.path.join(src, "test", name), exist_ok=True)
        save_variant(os.path.join(src, "test", name, "00"), "jpeg420", rng, 21, 27)
    bad_case(tmp, src, "differing sizes without --image-size", "sizes/train/x/01.png")
    bad_case(tmp, src, "--jpeg-draft without --image-size", "--jpeg-draft", "--jpeg-draft",
             expect=EXIT_USAGE)
    packed = {}
    for draft in (False, True):
        out = os.path.join(tmp, f"resized{draft}.h5")
        extra = ["--jpeg-draft"] if draft else []
        check(pack(src, out, "--image-size", "16", *extra).returncode == 0,
              f"--image-size 16 {' '.join(extra)} packed")
        packed[draft] = read(out)
        compare_resized(src, packed[draft], draft)
    check(not np.array_equal(packed[False]["train"][0], packed[True]["train"][0]),
          "--jpeg-draft changed the large JPEGs' pixels (it decoded them scaled)")


def compare_resized(src, got, draft):
    worst, means = 0, []
    for split in ("train", "test"):
        images = got[split][0]
        check(images.shape[1:] == (16, 16, 3), f"{split}: all 16x16x3")
        files = [os.path.join(src, split, c, f) for c in ("x", "y")
                 for f in sorted(os.listdir(os.path.join(src, split, c)))]
        for img, path in zip(images, files):
            pil = Image.open(path)
            if draft:
                pil.draft("RGB", (16, 16))  # a no-op for PNGs
            pil = pil.convert("RGB")
            w, h = pil.size
            nw, nh = (16, int(16 * h / w)) if w <= h else (int(16 * w / h), 16)
            pil = pil.resize((nw, nh), Image.BILINEAR)
            top, left = int(round((nh - 16) / 2.0)), int(round((nw - 16) / 2.0))
            want = np.asarray(pil)[top:top + 16, left:left + 16]
            diff = np.abs(img.astype(int) - want.astype(int))
            worst = max(worst, diff.max())
            means.append(diff.mean())
    what = "Pillow's draft('RGB', (16, 16)) + " if draft else "Pillow "
    print(f"resize vs {what}BILINEAR + centre crop: max |diff| {worst}, mean {np.mean(means):.3f}, "
          f"worst image mean {np.max(means):.3f}")
    check(worst <= RESIZE_MAX_DIFF and np.max(means) <= RESIZE_MEAN_DIFF,
          f"resize within {RESIZE_MAX_DIFF} levels (mean <= {RESIZE_MEAN_DIFF}) of {what}BILINEAR")


def test_bad_input(tmp, rng):
    def tree(name, per_class=2, classes=("a", "b")):
        root = os.path.join(tmp, name)
        for split in ("train", "test"):
            make_split(os.path.join(root, split), list(classes), per_class, rng,
                       kinds=["jpeg420", "png_rgb"])
        return root

    root = tree("truncated_jpeg")
    path = os.path.join(root, "train", "b", "000.jpg")
    data = open(path, "rb").read()
    open(path, "wb").write(data[:len(data) // 2])
    bad_case(tmp, root, "JPEG cut in its header", "truncated_jpeg/train/b/000.jpg")
    path = os.path.join(root, "train", "b", "000.jpg")
    open(path, "wb").write(data[:len(data) * 9 // 10])
    bad_case(tmp, root, "JPEG cut in its scan data", "truncated_jpeg/train/b/000.jpg")

    open(path, "wb").write(b"\xff\xd8\xff\xe0 not a JPEG past its signature")
    bad_case(tmp, root, "a JPEG signature and then junk (TurboJPEG's header read 0x0)",
             "truncated_jpeg/train/b/000.jpg: not a readable JPEG: the file ends in its header")

    root = tree("truncated_png")
    path = os.path.join(root, "test", "a", "001.png")
    data = open(path, "rb").read()
    open(path, "wb").write(data[:len(data) - 30])
    bad_case(tmp, root, "truncated PNG", "truncated_png/test/a/001.png")

    root = tree("text_crc")
    path = os.path.join(root, "train", "a", "text.png")
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "made by the test")
    Image.fromarray(picture(rng, 20, 24)).save(path, pnginfo=info)
    data = bytearray(open(path, "rb").read())
    at = data.index(b"tEXtComment") + len(b"tEXtComment") + 2  # inside the text, CRC unchanged
    data[at] ^= 0x20
    open(path, "wb").write(bytes(data))
    check(data.index(b"tEXt") < data.index(b"IDAT"), "the text chunk comes before the pixels")
    bad_case(tmp, root, "a CRC error in an ancillary (text) chunk", "text_crc/train/a/text.png")

    root = tree("not_image")
    open(os.path.join(root, "train", "a", "notes.txt"), "w").write("not a picture\n")
    bad_case(tmp, root, "a file that is not an image, --skip-bad named as the way past it",
             "not_image/train/a/notes.txt: not a JPEG or PNG image (--skip-bad packs the rest")

    # A large file that is not an image is refused from its first bytes, not read whole: under
    # a 4 GiB address-space limit an 8 GiB (sparse) one would end the pack out of memory.
    root = tree("big_not_image")
    with open(os.path.join(root, "train", "a", "movie.png"), "wb") as f:
        f.truncate(8 << 30)
    out = os.path.join(tmp, "big.h5")
    limit = lambda: resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))  # noqa: E731
    proc = subprocess.run([DPTRAIN, "pack", "--format", "folder", "--source", root, "--output",
                           out], capture_output=True, text=True, timeout=300, preexec_fn=limit)
    check(proc.returncode == EXIT_DATA and "big_not_image/train/a/movie.png: not a JPEG or PNG"
          in proc.stderr and not os.path.exists(out),
          f"an 8 GiB file that is not an image: refused by its signature (exit {proc.returncode}: "
          f"{proc.stderr.strip()[-300:]})")

    # One that starts as an image is read whole, into one buffer of its size (doubling held up
    # to 3 GiB for this 1.9 GiB one, past a 3 GiB address-space limit), then skipped.
    root = tree("big_jpeg_start")
    with open(os.path.join(root, "train", "a", "movie.mp4"), "wb") as f:
        f.write(b"\xff\xd8\xff")
        f.truncate(1900 << 20)
    limit = lambda: resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))  # noqa: E731
    proc = subprocess.run([DPTRAIN, "pack", "--format", "folder", "--source", root, "--output",
                           out, "--skip-bad", "--threads", "1"], capture_output=True, text=True,
                          timeout=300, preexec_fn=limit)
    check(proc.returncode == 0 and "train/a/movie.mp4: not a readable JPEG" in proc.stdout,
          f"a 1.9 GiB file with a JPEG signature: read within 3 GiB, then skipped (exit "
          f"{proc.returncode}: {proc.stderr.strip()[-300:]})")
    os.remove(out)

    root = tree("not_utf8")
    os.rename(os.path.join(root, "train", "b"), os.path.join(root.encode(), b"train", b"caf\xe9"))
    os.rename(os.path.join(root, "test", "b"), os.path.join(root.encode(), b"test", b"caf\xe9"))
    bad_case(tmp, root, "a class folder whose name is not UTF-8", "caf\\xe9: a class folder whose "
             "name is not UTF-8")

    root = tree("cmyk")
    Image.fromarray(picture(rng, 20, 24)).convert("CMYK").save(os.path.join(root, "test", "b", "c.jpg"))
    bad_case(tmp, root, "a CMYK JPEG", "cmyk/test/b/c.jpg")

    root = tree("dangling")
    os.symlink("/nonexistent/image.jpg", os.path.join(root, "train", "a", "gone.jpg"))
    bad_case(tmp, root, "an unreadable file (a dangling link)",
             "dangling/train/a/gone.jpg: a link to nothing")

    root = tree("empty_class")
    os.makedirs(os.path.join(root, "train", "c"))
    os.makedirs(os.path.join(root, "test", "c"))
    bad_case(tmp, root, "an empty class folder", "empty_class/train/c")

    root = tree("class_sets")
    make_split(os.path.join(root, "test"), ["c"], 1, rng)
    bad_case(tmp, root, "train and test with different class sets", "train/c")

    root = os.path.join(tmp, "many")
    for c in range(257):
        os.makedirs(os.path.join(root, f"c{c:03d}"))
    bad_case(tmp, root, "257 classes (labels are uint8)", "257 classes", "--test-fraction", "0.5")

    root = tree("both_layouts")
    bad_case(tmp, root, "--test-fraction with train/ and test/", "--test-fraction",
             "--test-fraction", "0.2", expect=EXIT_USAGE)
    bad_case(tmp, os.path.join(tmp, "flat_none"), "missing source folder", "flat_none")
    root = os.path.join(tmp, "tiny_flat")
    make_split(root, ["a", "b"], 3, rng, kinds=["jpeg420"])
    bad_case(tmp, root, "a --test-fraction that leaves no test image", "test split empty",
             "--test-fraction", "0.1", expect=EXIT_USAGE)
    for fraction in ("1", "-0.1", "nan"):
        bad_case(tmp, root, f"--test-fraction {fraction}", f"--test-fraction: {fraction} is not in",
                 "--test-fraction", fraction, expect=EXIT_USAGE)
    bad_case(tmp, tree("seed_unread"), "--seed without --test-fraction (unread)",
             "--seed: only a --test-fraction split reads it", "--seed", "3", expect=EXIT_USAGE)

    root = tree("with_val")
    make_split(os.path.join(root, "val"), ["a", "b"], 1, rng, kinds=["jpeg420"])
    bad_case(tmp, root, "a folder beside train/ and test/ (its images would be left out)",
             "with_val/val: a folder beside train/ and test/")
    root = tree("with_readme")
    open(os.path.join(root, "README.txt"), "w").write("about this dataset\n")
    out = os.path.join(tmp, "with_readme.h5")
    proc = pack(root, out)
    check(proc.returncode == 0 and "left out, beside train/ and test/: README.txt"
          in proc.stdout + proc.stderr and read(out)["class_names"] == ["a", "b"],
          f"a file beside train/ and test/: packed, the file named as left out "
          f"({proc.stdout.strip()[-200:]} {proc.stderr.strip()[-200:]})")

    root = os.path.join(tmp, "train_only")
    make_split(os.path.join(root, "train"), ["a", "b"], 2, rng, kinds=["jpeg420"])
    bad_case(tmp, root, "train/ of class folders without test/", "has a train folder but no test",
             "--test-fraction", "0.5")
    root = os.path.join(tmp, "one_blue")
    for c in ("a", "b"):
        os.makedirs(os.path.join(root, "train", c))
        os.makedirs(os.path.join(root, "test", c))
        for i in range(3):
            img = picture(rng, 12, 12)
            img[..., 2] = 40  # the same blue everywhere
            for split in ("train", "test"):
                Image.fromarray(img).save(os.path.join(root, split, c, f"{i}.png"))
    bad_case(tmp, root, "a channel with one value in every training pixel", "channel 2 has the "
             "same value (40 of 255)")
    out_dir = os.path.join(tmp, "out_folder")
    os.makedirs(out_dir)
    for output in (out_dir, os.path.join(tmp, "new_folder") + "/"):
        proc = pack(tree("to_folder"), output, expect=EXIT_USAGE)
        check(proc.returncode == EXIT_USAGE and "--output" in proc.stderr
              and not os.path.exists(os.path.join(tmp, "new_folder")),
              f"--output {output}: refused at once ({proc.stderr.strip()})")
    # An existing file pack did not write (a checkpoint, a user's image) is never replaced, nor
    # is a path inside the tree being packed written; a dataset pack wrote is replaced.
    source = tree("outputs")
    other = os.path.join(tmp, "notes.txt")
    open(other, "w").write("the user's")
    proc = pack(source, other, expect=EXIT_USAGE)
    check(proc.returncode == EXIT_USAGE and "not a dataset dptrain pack wrote" in proc.stderr
          and open(other).read() == "the user's",
          f"--output an existing other file: refused, left as it was ({proc.stderr.strip()})")
    image = os.path.join(source, "train", "a", sorted(os.listdir(os.path.join(source, "train", "a")))[0])
    before = open(image, "rb").read()
    for output in (image, os.path.join(source, "new.h5")):
        proc = pack(source, output, expect=EXIT_USAGE)
        check(proc.returncode == EXIT_USAGE and "inside --source" in proc.stderr
              and open(image, "rb").read() == before
              and not os.path.exists(os.path.join(source, "new.h5")),
              f"--output {output} inside --source: refused ({proc.stderr.strip()})")
    # Relative to a working folder inside the source (the source given as "." or "../..").
    for cwd, source_arg, output in ((source, ".", "rel.h5"),
                                    (os.path.join(source, "train", "a"), "../..", "rel.h5")):
        proc = subprocess.run([DPTRAIN, "pack", "--format", "folder", "--source", source_arg,
                               "--output", output], capture_output=True, text=True, cwd=cwd,
                              timeout=300)
        check(proc.returncode == EXIT_USAGE and "inside --source" in proc.stderr
              and not os.path.exists(os.path.join(cwd, output)),
              f"--source {source_arg} --output {output} from inside: refused "
              f"({proc.stderr.strip()})")
    packed = os.path.join(tmp, "replaced.h5")
    check(pack(source, packed).returncode == 0 and pack(source, packed).returncode == 0,
          "--output a dataset pack wrote: replaced")
    with h5py.File(packed, "a"):  # held open for writing (HDF5 locks it): named as such
        proc = pack(source, packed, expect=EXIT_USAGE)
    check(proc.returncode == EXIT_USAGE and "cannot be opened to check" in proc.stderr,
          f"--output a dataset another program holds open: the reason named ({proc.stderr.strip()})")
    link = os.path.join(tmp, "link.h5")
    os.symlink(packed, link)
    proc = pack(source, link, expect=EXIT_USAGE)
    check(proc.returncode == EXIT_USAGE and "is a link" in proc.stderr and os.path.islink(link),
          f"--output a link to a dataset: refused, the link kept ({proc.stderr.strip()})")
    # A source that cannot be resolved (a loop of links) is the scan's to report, not "inside".
    loop = os.path.join(tmp, "loop")
    os.symlink(loop, loop)
    proc = pack(loop, os.path.join(tmp, "elsewhere.h5"), expect=EXIT_DATA)
    check(proc.returncode == EXIT_DATA and "inside" not in proc.stderr,
          f"a source that is a loop of links: the scan's error ({proc.stderr.strip()})")
    for option in (["--threads", "-1"], ["--threads", "2000"], ["--progress-every", "-5"],
                   ["--image-size", "13378"]):  # over 178956970 pixels, Pillow's limit
        bad_case(tmp, tree("options"), f"{' '.join(option)}", option[0], *option,
                 expect=EXIT_USAGE)

    # --skip-bad: the same faults packed past, listed in the log and the file.
    root = tree("skip", per_class=3)
    path = os.path.join(root, "train", "a", "001.png")
    open(path, "wb").write(open(path, "rb").read()[:40])
    open(os.path.join(root, "test", "b", "zz.txt"), "w").write("text")
    save_variant(os.path.join(root, "train", "b", "big"), "png_rgb", rng, 30, 30)
    out = os.path.join(tmp, "skipped.h5")
    proc = pack(root, out, "--skip-bad")
    check(proc.returncode == 0, "--skip-bad packs the rest")
    got = read(out)
    skipped = list(got["attrs"]["skipped"])
    check(len(skipped) == 3 and skipped[0].startswith("train/a/001.png:")
          and skipped[1].startswith("train/b/big.png:") and skipped[2].startswith("test/b/zz.txt:"),
          f"'skipped' attribute lists the three bad files ({skipped})")
    check(proc.stdout.count("skipped") >= 3, "the log names the skipped files")
    check(len(got["train"][1]) == 5 and len(got["test"][1]) == 6, "the other 11 images packed")
    counts = list(got["attrs"]["source_counts"])
    check(counts == ["train/a 2", "train/b 3", "test/a 3", "test/b 3"], f"counts without them {counts}")

    # --skip-bad without --image-size packs the most common size, not the first file's: an odd
    # first file is the one skipped (judged by the first file, every other one was skipped).
    root = tree("skip_odd_first", per_class=3)
    save_variant(os.path.join(root, "train", "a", "000"), "png_rgb", rng, 30, 30)
    os.remove(os.path.join(root, "train", "a", "000.jpg"))
    proc = pack(root, out, "--skip-bad")
    check(proc.returncode == 0, f"--skip-bad with an odd first file packs ({proc.stderr.strip()})")
    got = read(out)
    skipped = list(got["attrs"]["skipped"])
    check(len(skipped) == 1 and skipped[0].startswith(
              "train/a/000.png: 30x30 pixels, but the most common size (11 of 12 images) is 24x20"),
          f"only the odd first file is skipped, judged by the common size ({skipped})")
    check(got["train"][0].shape[1:3] == (20, 24) and len(got["train"][1]) == 5,
          f"the other images packed at their common size ({got['train'][0].shape})")

    # --skip-bad that would leave a class without images: refused, as an empty class folder is.
    root = tree("skip_all", per_class=2)
    for name in os.listdir(os.path.join(root, "test", "b")):
        open(os.path.join(root, "test", "b", name), "w").write("not an image")
    bad_case(tmp, root, "--skip-bad leaving test/b empty", "class 'b'", "--skip-bad")
    # An option only another format reads is refused, not left unused.
    bad_case(tmp, tree("labels"), "--labels (cifar100's) for a folder", "--labels", "--labels",
             "coarse", expect=EXIT_USAGE)
    for option in (["--image-size", "8"], ["--skip-bad"], ["--threads", "2"]):  # valued, switch
        proc = subprocess.run([DPTRAIN, "pack", "--format", "cifar10", "--source", tmp,
                               "--output", os.path.join(tmp, "c.h5"), *option],
                              capture_output=True, text=True, timeout=60)
        check(proc.returncode == EXIT_USAGE and f"{option[0]}: only --format folder" in proc.stderr,
              f"{option[0]} (a folder's) for cifar10: refused ({proc.stderr.strip()})")


def png_variants(arr):
    """An 8-bit RGB PNG of `arr` damaged where Pillow (so ImageFolder) still reads it whole: a
    CRC error in the image data, in a text chunk after it or in IEND, no IEND at all, the file
    ending inside the image data's zlib checksum, a zlib stream that never ends (both refused
    before: libpng read the missing bytes, Pillow stops at the last row); and those it refuses:
    the image data's zlib checksum wrong, the file ending before the last row, a chunk after
    the image data whose data the file cuts short (Pillow reads on to IEND)."""
    h, w, _ = arr.shape
    raw = b"".join(b"\x00" + arr[y].tobytes() for y in range(h))
    rows = zlib.compress(raw)
    bad_adler = rows[:-1] + bytes([rows[-1] ^ 1])
    stream = zlib.compressobj()
    unterminated = stream.compress(raw) + stream.flush(zlib.Z_SYNC_FLUSH)

    def chunk(kind, data, bad_crc=False):
        good = png_chunk(kind, data)
        return good[:-1] + bytes([good[-1] ^ 1]) if bad_crc else good
    head = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
    end = chunk(b"IEND", b"")

    def frame_control(sequence):  # APNG's fcTL: the whole image, 1/10 s, no dispose or blend
        return chunk(b"fcTL", struct.pack(">IIIIIHHBB", sequence, w, h, 0, 0, 1, 10, 0, 0))
    return {"idat_crc": head + chunk(b"IDAT", rows, True) + end,
            "text_after": head + chunk(b"IDAT", rows) + chunk(b"tEXt", b"k\x00v", True) + end,
            "iend_crc": head + chunk(b"IDAT", rows) + chunk(b"IEND", b"", True),
            "no_iend": head + chunk(b"IDAT", rows),
            "cut_in_checksum": head + chunk(b"IDAT", rows)[:-6],
            # an animated PNG whose second frame is cut short: Pillow reads the first (before:
            # refused, the walk after the pixels went on past the next frame's fcTL)
            "apng_second_frame_cut": head + chunk(b"acTL", struct.pack(">II", 2, 0)) + frame_control(0) + chunk(b"IDAT", rows)
            + frame_control(1) + chunk(b"fdAT", struct.pack(">I", 2) + rows)[:-12],
            "unterminated": head + chunk(b"IDAT", unterminated) + end}, {
            "a wrong zlib checksum in the image data": head + chunk(b"IDAT", bad_adler) + end,
            "a file ending before its last row": head + chunk(b"IDAT", rows)[:-16],
            "a text chunk after the image data cut short (before: packed)":
                head + chunk(b"IDAT", rows) + chunk(b"tEXt", b"k\x00" + b"v" * 40)[:-20]}


def jpeg_variants():
    """Damaged JPEGs, each with the pixels Pillow decodes from it or None where it refuses it as
    truncated: a baseline file without its end marker (read where the last row needs none of
    the missing bytes: the smooth picture at quality 90 here; refused for the noisy one),
    extraneous bytes before a marker, trailing bytes, a flipped byte in the scan data (all read,
    libjpeg warning about some), cut inside the scan, a progressive one without its end marker
    (both refused as truncated), a damaged end marker and a byte of the scan made a marker
    (refused as broken: libjpeg's error comes after the last row, the rows after the stray
    marker grey; before, packed so). Pillow's verdict is its pixels, "truncated" or "broken"."""
    y, x = np.mgrid[0:64, 0:80]
    smooth = np.stack([(x * 3 + y) % 256, (y * 4) % 256, (x + y * 2) % 256], -1).astype(np.uint8)
    noisy = np.clip(smooth + np.random.default_rng(5).normal(0, 20, smooth.shape), 0, 255)

    def encoded(arr, **options):
        buf = io.BytesIO()
        Image.fromarray(arr.astype(np.uint8)).save(buf, "JPEG", quality=90, **options)
        return buf.getvalue()
    baseline = encoded(noisy)
    scan = baseline.index(b"\xff\xda")
    flipped = bytearray(baseline)
    flipped[scan + 200] ^= 0x55
    stray = bytearray(baseline)  # 0xFF before a byte that makes it a marker libjpeg refuses
    at = next(i for i in range(scan + 300, len(baseline) - 2)
              if 0 not in baseline[i - 1:i + 2] and 0xFF not in baseline[i - 1:i + 2]
              and not 0xD0 <= baseline[i + 1] <= 0xD7)
    stray[at] = 0xFF
    variants = {"jpeg_no_eoi_smooth": encoded(smooth)[:-2], "jpeg_no_eoi_noisy": baseline[:-2],
                "jpeg_extraneous": baseline[:scan] + b"\x00\x01\x02" + baseline[scan:],
                "jpeg_trailing": baseline + b"garbage", "jpeg_scan_flip": bytes(flipped),
                "jpeg_cut": baseline[:len(baseline) * 9 // 10],
                "jpeg_progressive_no_eoi": encoded(noisy, progressive=True)[:-2],
                "jpeg_bad_eoi": baseline[:-2] + b"\xff\x26", "jpeg_stray_marker": bytes(stray)}
    verdicts = {}
    for name, data in variants.items():
        try:
            verdicts[name] = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
        except OSError as e:
            verdicts[name] = "broken" if "broken data stream" in str(e) else "truncated"
            check("truncated" in str(e) or verdicts[name] == "broken",
                  f"{name}: Pillow refuses it as truncated or broken ({e})")
    return variants, verdicts


def test_read_as_pillow(tmp, rng):
    """What Pillow reads whole is packed, with Pillow's pixels, and what it refuses is refused:
    JPEGs libjpeg warns about but Pillow reads (before: refused), JPEGs that end before their
    last row (a progressive one: before its end), PNGs damaged after their header only where
    Pillow does not look (before: refused) and one with a wrong zlib checksum in its image data,
    and a PNG over a million pixels wide (libpng's default limit; before: "Invalid IHDR
    data")."""
    variants, verdicts = jpeg_variants()
    refusals = {"truncated": "train/b/damaged.jpg: truncated JPEG: the file ends before its last row",
                "broken": "train/b/damaged.jpg: corrupt JPEG: "}
    check({v if isinstance(v, str) else "read" for v in verdicts.values()} ==
          {"read", "truncated", "broken"},
          "Pillow reads some of the damaged JPEGs and refuses others as truncated or broken")
    for name, data in variants.items():
        root = os.path.join(tmp, "pillow_" + name)
        for split in ("train", "test"):
            make_split(os.path.join(root, split), ["a", "b"], 1, rng, size=(64, 80),
                       kinds=["jpeg420"])
        open(os.path.join(root, "train", "b", "damaged.jpg"), "wb").write(data)
        if isinstance(verdicts[name], str):
            bad_case(tmp, root, f"{name}: refused as Pillow refuses it", refusals[verdicts[name]])
            continue
        out = os.path.join(tmp, f"pillow_{name}.h5")
        proc = pack(root, out)
        got = read(out)["train"][0] if proc.returncode == 0 else None
        check(got is not None and np.array_equal(got[2], verdicts[name]),
              f"{name}: packed with Pillow's pixels (exit {proc.returncode} "
              f"{proc.stderr.strip()})")

    # --jpeg-draft on JPEGs under 8 pixels a side at 1/4 scale: Pillow's pixels too (TurboJPEG
    # picked another scale factor there).
    root = os.path.join(tmp, "tiny_draft")
    for split in ("train", "test"):
        make_split(os.path.join(root, split), ["a", "b"], 1, rng, size=(9, 17), kinds=["jpeg420"])
    out = os.path.join(tmp, "tiny_draft.h5")
    proc = pack(root, out, "--image-size", "2", "--jpeg-draft")
    got = read(out)["test"][0] if proc.returncode == 0 else None
    pil = Image.open(os.path.join(root, "test", "b", "000.jpg"))
    pil.draft("RGB", (2, 2))
    want = np.asarray(pil.convert("RGB").resize((3, 2), Image.BILINEAR))[:, :2]
    check(pil.size == (5, 3) and got is not None and np.array_equal(got[1], want),
          f"--jpeg-draft of a 17x9 JPEG to 2: decoded at 5x3, Pillow's pixels (exit "
          f"{proc.returncode} {proc.stderr.strip()})")

    arr = picture(rng, 6, 5)
    readable, broken = png_variants(arr)
    for name, data in readable.items():
        root = os.path.join(tmp, "pillow_" + name)
        make_split(os.path.join(root, "train"), ["a", "b"], 1, rng, size=(6, 5), kinds=["png_rgb"])
        make_split(os.path.join(root, "test"), ["a", "b"], 1, rng, size=(6, 5), kinds=["png_rgb"])
        path = os.path.join(root, "train", "b", "damaged.png")
        open(path, "wb").write(data)
        check(np.array_equal(pil_pixels(path), arr), f"{name}: Pillow reads it whole")
        out = os.path.join(tmp, f"pillow_{name}.h5")
        proc = pack(root, out)
        got = read(out)["train"][0] if proc.returncode == 0 else None
        check(got is not None and np.array_equal(got[2], arr),
              f"{name}: packed with Pillow's pixels (exit {proc.returncode} "
              f"{proc.stderr.strip()})")
    for what, data in broken.items():
        path = os.path.join(tmp, "pillow_no_iend", "train", "b", "damaged.png")
        open(path, "wb").write(data)
        try:
            pil_pixels(path)
            check(False, f"{what}: Pillow refuses it")
        except OSError:
            pass
        bad_case(tmp, os.path.join(tmp, "pillow_no_iend"), what,
                 "train/b/damaged.png: corrupt or truncated PNG")

    root = os.path.join(tmp, "wide")
    for split in ("train", "test"):
        for c in ("a", "b"):
            os.makedirs(os.path.join(root, split, c))
            Image.fromarray(rng.integers(0, 256, (2, 1_000_001), dtype=np.uint8)).save(
                os.path.join(root, split, c, "wide.png"))
    out = os.path.join(tmp, "wide.h5")
    proc = pack(root, out)
    got = read(out)["test"][0] if proc.returncode == 0 else None
    check(got is not None and np.array_equal(got[1], pil_pixels(os.path.join(root, "test", "b",
                                                                             "wide.png"))),
          f"a PNG 1,000,001 pixels wide: packed as Pillow reads it (exit {proc.returncode} "
          f"{proc.stderr.strip()})")


def test_odd_names(tmp, rng):
    """File and folder names that are not one line of UTF-8: --skip-bad's log line for a file
    whose name holds a newline stays one line, and the `skipped` and `sources` attributes,
    declared UTF-8, hold such names escaped (they held the raw bytes); a class folder whose name
    holds a control character is refused, as one that is not UTF-8 is."""
    root = os.path.join(tmp.encode(), b"odd\xff")
    for split in (b"train", b"test"):
        make_split(os.path.join(root, split).decode(errors="surrogateescape"), ["a", "b"], 2, rng,
                   kinds=["png_rgb"])
    open(os.path.join(root, b"train", b"a", b"evil\nname.png"), "w").write("not a picture")
    open(os.path.join(root, b"train", b"b", b"j\xffunk.png"), "w").write("not a picture")
    out = os.path.join(tmp, "odd.h5")
    proc = subprocess.run([DPTRAIN.encode(), b"pack", b"--format", b"folder", b"--source", root,
                           b"--output", out.encode(), b"--skip-bad"], capture_output=True,
                          timeout=300)
    log = proc.stdout.decode(errors="replace")
    skipped_lines = [line for line in log.splitlines() if ".png: " in line]
    check(proc.returncode == 0 and len(skipped_lines) == 2
          and any("evil\\nname.png: not a JPEG or PNG" in line for line in skipped_lines),
          f"--skip-bad: one log line per skipped file, names escaped ({skipped_lines})")
    try:
        attrs = read(out)["attrs"] if proc.returncode == 0 else {}
    except UnicodeDecodeError as e:
        attrs = {"error": str(e)}
    skipped, sources = list(attrs.get("skipped", [])), list(attrs.get("sources", [""]))[0]
    check(len(skipped) == 2 and skipped[0].startswith("train/a/evil\\nname.png:")
          and skipped[1].startswith("train/b/j\\xffunk.png:") and sources.startswith("odd\\xff/"),
          f"'skipped' and 'sources' are UTF-8 with the names escaped ({attrs})")

    for name, shown in (("b\x01c", "b\\x01c"), ("b\x85c", "b\\u0085c"), ("b\u2028c", "b\\u2028c")):
        bad = os.path.join(tmp, "control_class")
        shutil.rmtree(bad, ignore_errors=True)
        for split in ("train", "test"):
            make_split(os.path.join(bad, split), ["a", name], 1, rng, kinds=["png_rgb"])
        bad_case(tmp, bad, f"a class folder whose name has {name!r} (before: packed, but for "
                 "\\x01)", f"{shown}: a class folder whose name has a control character")

    # Rows in ImageFolder's order where file names are not UTF-8: Python sorts the bytes it
    # cannot decode as U+DC80..U+DCFF, after U+00E9 and before U+1F600 (before: byte order).
    names = [b"x\x80.png", "x\u00e9.png".encode(), b"x\xff.png", "x\U0001f600.png".encode(), b"xa.png"]
    root = os.path.join(tmp.encode(), b"order")
    for split in (b"train", b"test"):
        for cls in (b"a", b"b"):
            os.makedirs(os.path.join(root, split, cls))
    pictures = {}
    for i, name in enumerate(names):
        arr = np.full((4, 4, 3), 10 * i + 5, np.uint8)
        pictures[os.fsdecode(name)] = arr
        Image.fromarray(arr).save(os.path.join(root, b"train", b"a", name).decode(
            errors="surrogateescape"), "PNG")
    for split, cls in ((b"train", b"b"), (b"test", b"a"), (b"test", b"b")):
        Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(
            os.path.join(root, split, cls, b"z.png").decode(errors="surrogateescape"), "PNG")
    out = os.path.join(tmp, "order.h5")
    proc = subprocess.run([DPTRAIN.encode(), b"pack", b"--format", b"folder", b"--source", root,
                           b"--output", out.encode()], capture_output=True, timeout=300)
    want = [pictures[n] for n in sorted(os.listdir(os.path.join(root, b"train", b"a").decode(
        errors="surrogateescape")))]
    got = read(out)["train"][0][:len(names)] if proc.returncode == 0 else []
    check(len(got) == len(want) and all(np.array_equal(g, w) for g, w in zip(got, want)),
          f"files whose names are not UTF-8 in Python's sorted() order (exit {proc.returncode} "
          f"{proc.stderr.decode(errors='replace').strip()})")


def test_train_eval(tmp, rng):
    """A generated folder packed, trained on and evaluated by dptrain unchanged."""
    src = os.path.join(tmp, "trainable")
    for split, n in (("train", 24), ("test", 8)):
        for label, name in enumerate(["dark", "light"]):
            os.makedirs(os.path.join(src, split, name))
            for i in range(n):
                level = 60 if label == 0 else 190
                img = np.clip(rng.normal(level, 30, (20 + i % 5, 18, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(img).save(os.path.join(src, split, name, f"{i}.jpg"), quality=90)
    packed = os.path.join(tmp, "trainable.h5")
    check(pack(src, packed, "--image-size", "16").returncode == 0, "mixed sizes packed at 16x16")
    out = os.path.join(tmp, "runs")
    train = subprocess.run([DPTRAIN, "train", "--data", packed, "--arch", "resnet8", "--epochs", "2",
                            "--batch-size", "8", "--lr", "0.05", "--output-dir", out,
                            "--run-name", "folder", "--threads", "2"],
                           capture_output=True, text=True, timeout=600)
    check(train.returncode == 0, "dptrain train on the packed folder")
    if train.returncode != 0:
        print(train.stdout[-2000:], train.stderr[-2000:])
        return
    ev = subprocess.run([DPTRAIN, "eval", "--checkpoint", os.path.join(out, "folder", "checkpoint.h5"),
                         "--data", packed, "--threads", "2"], capture_output=True, text=True, timeout=300)
    check(ev.returncode == 0, "dptrain eval on the packed folder")
    if ev.returncode != 0:
        print(ev.stdout[-2000:], ev.stderr[-2000:])
    with h5py.File(os.path.join(out, "folder", "metrics.h5"), "r") as f:
        cm = f["final"]["confusion_matrix"][:]
        check(cm.shape == (2, 2) and cm.sum() == 16, f"confusion matrix over the 16 test images {cm.tolist()}")
    # A torchvision ResNet (ImageNet stem) on the same 16x16 images: one epoch runs.
    r18 = subprocess.run([DPTRAIN, "train", "--data", packed, "--arch", "resnet18", "--epochs", "1",
                          "--batch-size", "16", "--output-dir", out, "--run-name", "folder18",
                          "--threads", "2"], capture_output=True, text=True, timeout=600)
    check(r18.returncode == 0, "dptrain train --arch resnet18 on the packed folder")
    if r18.returncode != 0:
        print(r18.stdout[-2000:], r18.stderr[-2000:])


def photo_tree(tmp, name):
    """DIR/train/{a,b} of 30 large photos each, DIR/test/{a,b} of 1: 62 files whose decoding
    takes a while."""
    root = os.path.join(tmp, name)
    big = os.path.join(tmp, name + ".jpg")  # encoded once, copied: the decoding must be slow
    # Not one colour: a channel with one value everywhere is refused (its std is 0).
    Image.radial_gradient("L").resize((3000, 3000)).convert("RGB").save(big, quality=90)
    for split, n in (("train", 30), ("test", 1)):
        for c in ("a", "b"):
            os.makedirs(os.path.join(root, split, c))
            for i in range(n):
                shutil.copy(big, os.path.join(root, split, c, f"{i}.jpg"))
    return root


def test_progress(tmp, rng):
    """Progress lines come while a chunk decodes (the second chunk here is 44 large photos), not
    only when it is done: one thread, a line at every update; the chunks end at 16, 60 (the
    train split's end) and 62."""
    root = photo_tree(tmp, "progress")
    proc = pack(root, os.path.join(tmp, "progress.h5"), "--image-size", "8", "--threads", "1",
                "--progress-every", "0")
    done = [int(m) for m in re.findall(r"pack: (\d+)/62 files", proc.stdout + proc.stderr)]
    check(proc.returncode == 0 and any(d not in (16, 60, 62) for d in done),
          f"progress lines inside a chunk, not only at its end ({done})")


def test_interrupted(tmp, rng):
    """SIGTERM, SIGINT or SIGPIPE (its log's reader gone) while a pack writes: the process ends
    by that signal, as before, and leaves neither the output nor its .tmp (an earlier output
    stays whole; SIGPIPE left the .tmp, which refused the next pack)."""
    root = photo_tree(tmp, "interrupted")
    out = os.path.join(tmp, "interrupted.h5")
    with h5py.File(out, "w") as f:  # an earlier output (pack replaces only its own datasets)
        f.attrs["format"] = np.bytes_("dptrain-dataset")
    earlier = open(out, "rb").read()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGPIPE):
        proc = subprocess.Popen([DPTRAIN, "pack", "--format", "folder", "--source", root,
                                 "--output", out, "--image-size", "8", "--threads", "1",
                                 "--progress-every", "0"],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for line in proc.stdout:  # past the first chunk (16 files): the .tmp is being written
            m = re.search(r"pack: (\d+)/62 files", line)
            if m and int(m[1]) > 16:
                break
        tmp_existed = os.path.exists(out + ".tmp")
        if sig == signal.SIGPIPE:  # the log's reader gone (`| head`): the next line raises it
            proc.stdout.close()
            proc.wait(timeout=60)
        else:
            proc.send_signal(sig)
            proc.communicate(timeout=60)
        check(proc.returncode == -sig and tmp_existed and not os.path.exists(out + ".tmp")
              and open(out, "rb").read() == earlier,
              f"{sig.name} mid-pack: ended by it (exit {proc.returncode}), the .tmp that existed "
              f"({tmp_existed}) removed, the earlier output whole")


def test_thread_limit(tmp, rng):
    """More --threads than the system lets the process start: the threads it did start share
    the work, a warning says so, and the file equals an unlimited pack's (before: std::terminate,
    SIGABRT). The limit is RLIMIT_NPROC for a user id of this test's own, which no other process
    has (root is exempt from the limit, and another user's count moves with its other
    processes); large JPEGs keep every started thread decoding while the next ones are created,
    so the limit is met for certain."""
    if os.geteuid() != 0:
        print("skipped: needs root, to run as a user id no other process has")
        return
    os.chmod(tmp, 0o777)
    # A copy the limited user can reach wherever the checkout is (the project's libraries are
    # static).
    dptrain = shutil.copy(DPTRAIN, os.path.join(tmp, "dptrain"))
    os.chmod(dptrain, 0o755)
    root = photo_tree(tmp, "threads")
    out = os.path.join(tmp, "threads-out")
    os.makedirs(out)
    os.chmod(out, 0o777)
    limited, unlimited = os.path.join(out, "limited.h5"), os.path.join(out, "unlimited.h5")
    proc = subprocess.run([dptrain, "pack", "--format", "folder", "--source", root, "--output",
                           limited, "--threads", "60", "--image-size", "8"],
                          capture_output=True, text=True, timeout=300,
                          preexec_fn=under_process_limit(spare_tasks=40))
    check(proc.returncode == 0 and "warning: started" in proc.stdout + proc.stderr,
          f"thread limit: packed with the threads started, and says so (exit {proc.returncode}: "
          f"{(proc.stdout + proc.stderr).strip()[-400:]})")
    if proc.returncode == 0 and pack(root, unlimited, "--image-size", "8").returncode == 0:
        a, b = read(limited), read(unlimited)
        check(all(np.array_equal(a[s][i], b[s][i]) for s in ("train", "test") for i in (0, 1)),
              "thread limit: the same images and labels as without the limit")


with tempfile.TemporaryDirectory() as tmp:
    rng = np.random.default_rng(19)
    for test in (test_exact_pixels, test_split, test_resize, test_bad_input, test_progress,
                 test_interrupted, test_thread_limit, test_read_as_pillow, test_odd_names,
                 test_train_eval):
        print(f"--- {test.__name__}")
        test(tmp, rng)

if failures:
    print(f"{len(failures)} checks failed")
    sys.exit(1)
print("all checks passed")
