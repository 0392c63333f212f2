"""Bad options: unknown or contradictory options, reliability options out of range, numbers
that are not finite or too large to convert, a config path that is a folder, a batch size that
the ranks do not divide, an option-A shortcut on an arch without one, airbench on images it
cannot take, a --resume file that is not there (leaving no run directory), and a checkpoint
from another architecture, shortcut, --normalize or class count (`dptrain eval` and
`--resume`): one clear error line naming the option or field, the documented exit code, no
hang. Also what must not be lost: `eval --output` refuses the checkpoint, a metrics file, a
link and a missing folder, `--resume auto` without a checkpoint sets the old metrics.h5 aside
instead of overwriting it, and `--overwrite` leaves none of the replaced run's checkpoints, nor
loses the replaced run where the new one fails at its first step (a run continued beside what
a killed one left says so).
Ranks given different options (--lr, --epochs) are refused in one line naming the option and
both values; --threads may differ, but not beyond 1024 or the threads the process limit lets
start. A second job in a run directory another job is writing is
refused."""
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading

import h5py
import numpy as np
from reliability_util import EXIT, Checker, write_tiny_dataset

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from process_limits import under_process_limit  # noqa: E402


check = Checker(sys.argv[1], sys.argv[2])
USAGE, DATA = EXIT["usage"], EXIT["data"]

with tempfile.TemporaryDirectory() as tmp:
    ten = os.path.join(tmp, "ten.h5")
    write_tiny_dataset(ten, train=32, test=8)
    five = os.path.join(tmp, "five.h5")
    write_tiny_dataset(five, train=32, test=8, classes=5)
    renamed = os.path.join(tmp, "renamed.h5")  # ten's classes, the fourth one renamed
    write_tiny_dataset(renamed, train=32, test=8)
    with h5py.File(renamed, "r+") as f:
        f["class_names"][3] = b"x3"
    bigger = os.path.join(tmp, "bigger.h5")  # ten's classes, more training images
    write_tiny_dataset(bigger, train=40, test=8)
    out = os.path.join(tmp, "out")

    def train(*extra, data=ten, run="r", **overrides):
        """`dptrain train` on the tiny set; keyword overrides replace options (arch="resnet20")."""
        options = {"--data": data, "--arch": "resnet8", "--epochs": "1", "--batch-size": "8",
                   "--threads": "1", "--max-steps-per-epoch": "2", "--output-dir": out,
                   "--run-name": run}
        options.update({"--" + k.replace("_", "-"): v for k, v in overrides.items()})
        return ["train"] + [x for kv in options.items() for x in kv] + list(extra)

    check.expect_error("unknown option", train("--max-skips", "3"), USAGE, ["max-skips"])
    # The start of another option's name is not that option (Boost's guessing is off):
    # --max-steps ran as --max-steps-per-epoch, train's --output as --output-dir.
    check.expect_error("an option's abbreviation", train("--max-steps", "2"), USAGE,
                       ["unrecognised option '--max-steps'"])
    check.expect_error("eval's --output given to train", train("--output", "x.h5"), USAGE,
                       ["unrecognised option '--output'"])
    check.expect_error("bench --warmup 2^31 - 1 (the loop's count would overflow)",
                       ["bench", "--warmup", "2147483647", "--steps", "1"], USAGE,
                       ["option --warmup: must be in [0, 1000000]"])
    check.expect_error("bench --steps 2^30 (with --warmup 2^30 the count overflowed)",
                       ["bench", "--warmup", "1073741824", "--steps", "1073741824"], USAGE,
                       ["option --steps: must be in [1, 1000000]"])
    check.expect_error("--arch resnet9", train(arch="resnet9"), USAGE,
                       ["option --arch: unknown model 'resnet9' (known: "])
    check.expect_error("--zero-init-residual on airbench94",
                       train("--zero-init-residual", arch="airbench94"), USAGE,
                       ["option --zero-init-residual: airbench94 has no residual blocks"])
    check.expect_error("--crop-padding 2^31 - 1", train(crop_padding="2147483647"), USAGE,
                       ["option --crop-padding: must be in [0, 65536]"])
    check.expect_error("--lookahead-power -1", train("--lookahead-every", "1",
                                                     "--lookahead-power", "-1"), USAGE,
                       ["option --lookahead-power: must not be negative"])
    check.expect_error("--lookahead-base without --lookahead-every",
                       train("--lookahead-base", "0.5"), USAGE,
                       ["option --lookahead-base: needs --lookahead-every > 0"])
    # --help on one rank only: that rank would print it and leave, the other wait for it.
    check.expect_error("--help on one rank of two", None, USAGE,
                       ["option --help: rank 1 has it, rank 0 has not"],
                       mpmd=[train(), train("--help")], one_line=False)
    check.expect_error("`dptrain help` on one rank of two", None, USAGE,
                       ["option --help: rank 1 has it, rank 0 has not"],
                       mpmd=[train(), ["help"]], one_line=False)
    # One seed spelt two ways is one configuration, recorded as the number.
    code, err, _, _ = check.run(None, mpmd=[train("--seed", "7", run="seeds"),
                                            train("--seed", "07", run="seeds")])
    with h5py.File(os.path.join(out, "seeds", "metrics.h5")) as f:
        recorded = f["config"].attrs.get("seed")
    check.record(code == 0 and recorded == b"7", "--seed 7 and 07 on two ranks: one seed, 7",
                 f"exit {code}, recorded {recorded!r}: {err.strip()[-300:]}")
    # A word that is no option's value (a shell glob's second file): refused, not passed over.
    check.expect_error("a stray word", train("--resume", "auto", "second.h5"), USAGE,
                       ["unexpected argument 'second.h5'"])
    check.expect_error("bench --peak beside a model's option", ["bench", "--peak", "--arch",
                       "resnet50"], USAGE, ["option --arch: not for --peak"])
    check.expect_error("bench --peak on a GPU", ["bench", "--peak", "--device", "cuda"], USAGE,
                       ["option --device: not for --peak"])
    check.expect_error("a stray word to bench", ["bench", "--arch", "resnet8", "resnet50"], USAGE,
                       ["unexpected argument 'resnet50'"])
    check.expect_error("inspect without a file", ["inspect"], USAGE,
                       ["inspect: no file given (usage: dptrain inspect FILE)"])
    check.expect_error("verify without a file", ["verify"], USAGE,
                       ["verify: no file given (usage: dptrain verify FILE...)"])
    # Refused where it is read, before a backend is chosen (here: no GPU to choose).
    check.expect_error("bench --shortcut C", ["bench", "--shortcut", "C", "--device", "cuda"],
                       USAGE, ["option --shortcut: 'C' is not A, B or auto"])
    check.expect_error("contradictory --resume and --overwrite",
                       train("--resume", "auto", "--overwrite"), USAGE, ["--resume", "--overwrite"])
    check.expect_error("--max-consecutive-skips 0", train("--max-consecutive-skips", "0"), USAGE,
                       ["--max-consecutive-skips"])
    check.expect_error("negative --collective-timeout", train("--collective-timeout", "-1"),
                       USAGE, ["--collective-timeout"])
    check.expect_error("unknown --augment-on", train("--augment-on", "gpu"), USAGE,
                       ["--augment-on", "auto, host or device"])
    check.expect_error("unknown --fail-mode", train("--fail-mode", "explode"), USAGE,
                       ["--fail-mode", "stall"])
    check.expect_error("unknown --shortcut", train("--shortcut", "C"), USAGE,
                       ["--shortcut", "A, B or auto"])
    check.expect_error("--shortcut A on a torchvision arch",
                       train(arch="resnet18_cifar", shortcut="A"), USAGE,
                       ["--shortcut", "resnet18_cifar", "projections (B)"])
    check.expect_error("--nesterov with --dampening", train("--nesterov", "true",
                                                           "--dampening", "0.1"), USAGE,
                       ["--nesterov", "--dampening 0"])
    check.expect_error("unknown --lr-step-unit", train("--lr-step-unit", "iteration"), USAGE,
                       ["--lr-step-unit", "step or epoch"])
    check.expect_error("fractional milestone stepped per epoch",
                       train("--lr-step-unit", "epoch", "--lr-milestones", "0.5", epochs="2"),
                       USAGE, ["--lr-milestones", "whole epochs"])
    check.expect_error("--lr-points beside another schedule",
                       train("--lr-schedule", "linear-warmup-decay", "--lr-points", "0:1,1:0.1"),
                       USAGE, ["--lr-points", "only by --lr-schedule piecewise"])
    check.expect_error("unknown --onecycle-anneal",
                       train("--lr-schedule", "onecycle", "--onecycle-anneal", "cubic"), USAGE,
                       ["--onecycle-anneal", "cos or linear"])
    check.expect_error("--lr inf", train("--lr", "inf"), USAGE, ["--lr", "finite"])
    check.expect_error("--weight-decay inf", train("--weight-decay", "inf"), USAGE,
                       ["--weight-decay", "finite"])
    check.expect_error("--min-lr nan", train("--lr-schedule", "cosine", "--min-lr", "nan"), USAGE,
                       ["--min-lr", "finite"])
    check.expect_error("--min-lr above --lr", train("--lr-schedule", "cosine", "--min-lr", "1"),
                       USAGE, ["--min-lr", "[0, --lr]"])
    check.expect_error("--lr-gamma 0", train("--lr-gamma", "0"), USAGE, ["--lr-gamma", "positive"])
    check.expect_error("--lookahead-every beyond the run's steps",
                       train("--lookahead-every", "1000"), USAGE,
                       ["--lookahead-every", "1000 exceeds the run's", "initial weights"])
    check.expect_error("--lr-points with an infinite factor",
                       train("--lr-schedule", "piecewise", "--lr-points", "0:1,1:inf"), USAGE,
                       ["--lr-points", "finite"])
    check.expect_error("--warmup-epochs beside a piecewise schedule",
                       train("--lr-schedule", "linear-warmup-decay", "--warmup-epochs", "1",
                             epochs="2"),
                       USAGE, ["--warmup-epochs", "linear-warmup-decay", "its own points"])
    check.expect_error("--onecycle-pct-start 2",
                       train("--lr-schedule", "onecycle", "--onecycle-pct-start", "2"), USAGE,
                       ["--onecycle-pct-start", "(0, 1)"])
    check.expect_error("--prefetch 1", train("--prefetch", "1"), USAGE, ["--prefetch", "[2, 64]"])
    check.expect_error("--prefetch 1000000000", train("--prefetch", "1000000000"), USAGE,
                       ["--prefetch", "[2, 64]"])
    check.expect_error("--bucket-mb 1e30", train("--bucket-mb", "1e30"), USAGE, ["--bucket-mb"])
    check.expect_error("--seed -1", train("--seed", "-1"), USAGE,
                       ["--seed", "'-1' must be a whole number from 0 to 18446744073709551615"])
    check.expect_error("--seed 2^64", train("--seed", "18446744073709551616"), USAGE, ["--seed"])
    # A bad option on every rank's command line: one line in the job's log (rank 0's), not one
    # per rank with every rank's MPI_Abort. (Open MPI 4's mpirun may still print an
    # ORTE_ERROR_LOG line of its own about the abort's help message under load: not dptrain's.)
    check.expect_error("--momentum 2 on 2 ranks", train("--momentum", "2"), USAGE,
                       ["rank 0: error: option --momentum"], ranks=2)
    # A fault or NaN aimed at a rank the job lacks would test nothing: refused on every rank.
    check.expect_error("--fail-rank past the job's ranks",
                       train("--fail-at-step", "2", "--fail-rank", "2"), USAGE,
                       ["--fail-rank", "rank 2 is not in this job of 2 ranks"], ranks=2)
    check.expect_error("--inject-nan-rank past the job's ranks",
                       train("--inject-nan-at-step", "2", "--inject-nan-rank", "1"), USAGE,
                       ["--inject-nan-rank", "rank 1 is not in this job of 1 rank"])
    # Any positive size is valid: under a byte, one tensor per bucket (as DDP's bucket_cap_mb).
    code, err, _, _ = check.run(train("--bucket-mb", "1e-9", run="tiny-buckets"))
    check.record(code == 0, "--bucket-mb 1e-9 trains", f"exit {code} {err.strip()[-300:]}")
    check.expect_error("--warmup-epochs of no step",
                       train("--warmup-epochs", "0.1", "--lr-schedule", "constant"), USAGE,
                       ["--warmup-epochs", "no step"])
    check.expect_error("--epochs 1e300", train(epochs="1e300"), USAGE, ["--epochs"])
    check.expect_error("--run-name with a path", train(run="../elsewhere"), USAGE,
                       ["--run-name", "plain name"])
    check.expect_error("--run-name with a newline", train(run="a\nb"), USAGE,
                       ["--run-name", "control character"])
    check.expect_error("--resume names no file",
                       train("--resume", os.path.join(tmp, "typo.h5"), run="typo"), USAGE,
                       ["--resume", "typo.h5", "no such file"])
    check.expect_error("--resume names a folder", train("--resume", tmp, run="typo"), USAGE,
                       ["--resume", "not a checkpoint file"])
    check.record(not os.path.exists(os.path.join(out, "typo")),
                 "--resume names no file: no run directory left behind", os.path.join(out, "typo"))
    one_pixel = os.path.join(tmp, "one_pixel.h5")
    write_tiny_dataset(one_pixel, train=16, test=4, side=1)
    check.expect_error("--tta 2 on 1-pixel images (its reflect shift needs 2)",
                       train("--tta", "2", data=one_pixel, run="tta", crop_padding="0"), USAGE,
                       ["--tta 2", "reflect padding 1", "1x1"])
    check.record(not os.path.exists(os.path.join(out, "tta")),
                 "--tta 2 on 1-pixel images: refused before training, no run directory",
                 os.path.join(out, "tta"))
    check.expect_error("--config names a folder", train("--config", tmp), USAGE,
                       ["--config", "not a file"])
    # A name too long for the file system to check: refused as unreadable, on every rank alike.
    check.expect_error("--config of 5000 characters", train("--config", "c" * 5000), USAGE,
                       ["option --config: cannot read"], ranks=2)
    nested = os.path.join(tmp, "nested.cfg")
    with open(nested, "w") as f:
        f.write("epochs = 1\nconfig = other.cfg\n")
    check.expect_error("a config file naming another", train("--config", nested), USAGE,
                       [nested, "'config' names another config file"])
    # A UTF-8 byte order mark (Windows editors write one) is not part of the first key.
    with_bom = os.path.join(tmp, "bom.cfg")
    with open(with_bom, "wb") as f:
        f.write(b"\xef\xbb\xbflr = -1\n")
    check.expect_error("a config file starting with a byte order mark", train("--config", with_bom),
                       USAGE, ["option --lr: must not be negative"])
    # Pipes: a named one is read when its writer delivers within 30 s, refused after them where
    # nobody writes (it blocked for ever, deaf to SIGTERM); a device is refused.
    fifo = os.path.join(tmp, "config.fifo")
    os.mkfifo(fifo)

    def write_config_into_fifo():
        with open(fifo, "w") as f:
            f.write("lr = -1\n")
    writer = threading.Thread(target=write_config_into_fifo)
    writer.start()
    check.expect_error("a pipe as --config is read", train("--config", fifo), USAGE,
                       ["option --lr: must not be negative"], limit=60)
    writer.join()
    check.expect_error("a named pipe nobody writes as --config", train("--config", fifo), USAGE,
                       ["option --config", "config.fifo", "a named pipe that did not deliver"],
                       limit=90)
    # An anonymous pipe (`<(...)`, stdin) has its writer: read to its end, without the bound.
    check.expect_error("stdin's pipe as --config is read", train("--config", "/dev/stdin"), USAGE,
                       ["option --lr: must not be negative"], input="lr = -1\n")
    check.expect_error("a device as --config", train("--config", "/dev/zero"), USAGE,
                       ["option --config", "not a file or a pipe"])
    for command in (["inspect", fifo], train(data=fifo)):
        check.expect_error(f"{command[0]} of a named pipe", command, EXIT["data"],
                           ["config.fifo", "not a regular file"], limit=30)
    code, _, verdict, took = check.run(["verify", fifo], limit=30)  # its verdicts: stdout
    check.record(code == EXIT["data"] and verdict.strip() == f"{fifo}: cannot be verified: not "
                 "a regular file (a pipe or a device), not an HDF5 file",
                 "verify of a named pipe", f"exit {code} in {took:.1f} s: {verdict.strip()}")
    binary = os.path.join(tmp, "binary.cfg")
    with open(binary, "wb") as f:
        f.write(b"epochs = 1\nmomentum = 0.9\x00\x01\n")
    check.expect_error("a NUL byte in a config file", train("--config", binary), USAGE,
                       [binary, "line 2 holds a NUL byte"])
    check.expect_error("an empty --output-dir", train(output_dir=""), USAGE,
                       ["option --output-dir", "must not be empty"])
    with open(nested, "w") as f:
        f.write("help = true\n")
    check.expect_error("help in a config file", train("--config", nested), USAGE,
                       [nested, "'help' is for the command line"])
    check.expect_error("airbench94 on 8x8 images", train(arch="airbench94"), USAGE,
                       ["--arch", "airbench94 needs images of 25 to 48", "not 8x8", "ten.h5"])
    check.expect_error("bench: airbench94 at --image-size 16",
                       ["bench", "--arch", "airbench94", "--image-size", "16", "--batch-size", "2",
                        "--steps", "1", "--threads", "1"], USAGE, ["--image-size", "25 to 48"])
    for command in (train(threads="100000"),
                    ["bench", "--steps", "1", "--warmup", "0", "--threads", "100000"]):
        check.expect_error(f"{command[0]}: --threads 100000", command, USAGE,
                           ["--threads", "100000", "1 to 1024"])
    # More threads than the user's process limit (ulimit -u) lets start: OpenMP exited with its
    # own "libgomp: Thread creation failed" line; the option is named instead. Root is exempt
    # from the limit, so as root the run is another user's.
    with tempfile.TemporaryDirectory() as limited:
        os.chmod(limited, 0o777)
        shutil.copy(ten, limited)
        os.chmod(os.path.join(limited, "ten.h5"), 0o644)
        check.expect_error(
            "--threads beyond the process limit",
            train(threads="64", data=os.path.join(limited, "ten.h5"),
                  output_dir=os.path.join(limited, "out")),
            USAGE, ["option --threads: 64 compute threads cannot be started", "ulimit -u"],
            preexec_fn=under_process_limit(spare_tasks=24), cwd=limited)
    check.expect_error("bench: --classes 1",
                       ["bench", "--classes", "1", "--steps", "1", "--threads", "1"], USAGE,
                       ["--classes", "in [2, 2^24]"])
    check.expect_error("bench: a batch too large to count",
                       ["bench", "--batch-size", "4611686018427387904", "--threads", "1"], USAGE,
                       ["--batch-size", "in [1, 2^30]"])
    check.expect_error("bench: a batch too large for memory",
                       ["bench", "--batch-size", str(1 << 30), "--image-size", "1024",
                        "--steps", "1", "--threads", "1"], USAGE, ["out of memory"])
    # resnet18's ImageNet stem leaves 1x1 maps from 32x32 images: one image per batch gives its
    # last batch norms one value per channel, which training cannot normalise (PyTorch refuses
    # it too); the backend's internal check said so as an internal error (exit 1).
    check.expect_error("bench: batch norm with one value per channel",
                       ["bench", "--arch", "resnet18", "--batch-size", "1", "--steps", "1",
                        "--warmup", "0", "--threads", "1"], USAGE,
                       ["batch norm 'layer4.0.bn1'", "more than one value per channel"])
    check.expect_error("batch not divisible by the ranks", train(run="b", batch_size="5"),
                       USAGE, ["--batch-size", "5 is not divisible by the 2 ranks"], ranks=2)

    # A real checkpoint of resnet8 on the 10-class set, then uses that do not fit it.
    code, err, _, took = check.run(train(run="ref"))
    check.record(code == 0, "reference run", f"exit {code} in {took:.1f} s {err.strip()[-300:]}")
    ckpt = os.path.join(out, "ref", "checkpoint.h5")
    # Its metrics.h5 rewritten by h5py in the newest format (superblock version 3), which
    # dptrain cannot append to: the resume says so, and leaves the file as it was.
    shutil.copytree(os.path.join(out, "ref"), os.path.join(out, "v3"))
    v3_metrics = os.path.join(out, "v3", "metrics.h5")
    with h5py.File(os.path.join(out, "ref", "metrics.h5"), "r") as source, \
            h5py.File(v3_metrics, "w", libver="latest") as copy:
        for key, value in source.attrs.items():
            copy.attrs[key] = value
        for key in source:
            source.copy(key, copy)
    before = open(v3_metrics, "rb").read()
    check.expect_error("resume: metrics.h5 rewritten in HDF5's newest format",
                       train("--resume", "auto", run="v3", epochs="2"), DATA,
                       ["metrics.h5", "superblock version 3", "libver='latest'"])
    check.record(open(v3_metrics, "rb").read() == before, "that metrics.h5 left as it was",
                 v3_metrics)
    # eval --output never replaces the checkpoint, a metrics file, a link, or a file in a missing
    # folder.
    metrics = os.path.join(out, "ref", "metrics.h5")
    evaluate = ["eval", "--checkpoint", ckpt, "--data", ten, "--threads", "1", "--output"]
    check.expect_error("eval: --threads 100000",
                       ["eval", "--checkpoint", ckpt, "--data", ten, "--threads", "100000"],
                       USAGE, ["--threads", "100000", "1 to 1024"])
    check.expect_error("eval: --output onto the checkpoint", evaluate + [ckpt], USAGE,
                       ["--output", "is the --checkpoint file"])
    check.expect_error("eval: --output onto metrics.h5", evaluate + [metrics], USAGE,
                       ["--output", "metrics.h5 exists and is not an eval file"])
    check.expect_error("eval: --output in a missing folder",
                       evaluate + [os.path.join(tmp, "no", "e.h5")], USAGE,
                       ["--output", "does not exist"])
    # A link to an eval file: the rename would replace the link, not its target (as pack's
    # --output, refused; it was replaced by a file, the target left as it was).
    evaluated = os.path.join(tmp, "linked-target.h5")
    code, err, _, _ = check.run(evaluate + [evaluated])
    check.record(code == 0, "eval: an eval file to link to", f"exit {code} {err[-300:]}")
    link = os.path.join(tmp, "linked.h5")
    os.symlink(evaluated, link)
    check.expect_error("eval: --output names a link", evaluate + [link], USAGE,
                       ["--output", "linked.h5 is a link", "name the file itself"])
    check.record(os.path.islink(link), "eval: the link left as it was", link)
    check.expect_error("eval: --collective-timeout -1",
                       evaluate + [os.path.join(tmp, "e.h5"), "--collective-timeout", "-1"], USAGE,
                       ["--collective-timeout"])
    check.expect_error("eval: --checkpoint names a folder",
                       ["eval", "--checkpoint", tmp, "--data", ten, "--threads", "1"], DATA,
                       [tmp + ": a folder, not an HDF5 file"])
    code, _, line, _ = check.run(["verify", tmp])
    check.record(code == DATA and line.strip() == f"{tmp}: cannot be verified: a folder, not an "
                 "HDF5 file", "verify: a folder", f"exit {code}: {line.strip()}")
    # An HDF5 file holding nothing: what a pack killed before HDF5 flushed its metadata leaves.
    empty = os.path.join(tmp, "empty.h5")
    h5py.File(empty, "w").close()
    code, _, line, _ = check.run(["verify", empty])
    check.record(code == DATA and line.strip() == f"{empty}: cannot be verified: holds no "
                 "datasets and no attributes (a write cut short, or not a file dptrain wrote)",
                 "verify: an empty HDF5 file is not verified", f"exit {code}: {line.strip()}")
    check.expect_error("eval: --output below a file", evaluate + [os.path.join(ckpt, "e.h5")],
                       USAGE, ["--output", "is not a folder"])
    # A folder no file can be created in: said before the evaluation, not after it.
    check.expect_error("eval: --output in a folder it cannot write", evaluate + ["/proc/e.h5"],
                       EXIT["io"], ["--output", "cannot create a file in folder /proc"])
    # A killed eval's leftover e.h5.tmp: said before the evaluation, not after it (whose result
    # could then not be written).
    leftover = os.path.join(tmp, "leftover.h5")
    open(leftover + ".tmp", "w").close()
    code, err, stdout, _ = check.run(evaluate + [leftover])
    check.record(code == EXIT["io"] and "leftover.h5.tmp exists" in err
                 and "test split: accuracy" not in stdout + err and not os.path.exists(leftover),
                 "eval: a leftover --output .tmp refused before the evaluation",
                 f"exit {code}: {err.strip()[-300:]}")
    # Ranks that would evaluate differently (one with test-time augmentation): refused on all.
    one = ["eval", "--checkpoint", ckpt, "--data", ten, "--threads", "1", "--output",
           os.path.join(tmp, "mixed.h5")]
    check.expect_error("eval: --tta differing between ranks", None, USAGE,
                       ["option --tta: rank 1 has '2', rank 0 has '0'"],
                       mpmd=[one, one + ["--tta", "2"]], one_line=False)
    check.record(not os.path.exists(os.path.join(tmp, "mixed.h5")), "no eval file written",
                 "mixed.h5")
    # What the ranks may differ in: the checkpoint's path (a staged copy), --output (only rank
    # 0 writes it: a leftover .tmp at rank 1's path is not its concern) and --threads.
    staged = os.path.join(tmp, "staged-copy.h5")
    shutil.copy(ckpt, staged)
    open(os.path.join(tmp, "rank1.h5.tmp"), "w").close()
    code, err, _, _ = check.run(None, mpmd=[
        ["eval", "--checkpoint", ckpt, "--data", ten, "--threads", "1", "--output",
         os.path.join(tmp, "rank0.h5")],
        ["eval", "--checkpoint", staged, "--data", ten, "--threads", "2", "--output",
         os.path.join(tmp, "rank1.h5")]])
    check.record(code == 0 and os.path.exists(os.path.join(tmp, "rank0.h5")),
                 "eval: ranks with another checkpoint path, --output (a .tmp at rank 1's) and "
                 "--threads",
                 f"exit {code} {err.strip()[-300:]}")
    foreign = os.path.join(tmp, "foreign-arch.h5")  # an edited or foreign checkpoint
    shutil.copy(ckpt, foreign)
    with h5py.File(foreign, "r+") as f:
        f.attrs["arch"] = np.bytes_("foo")
    check.expect_error("eval: a checkpoint of an unknown network",
                       ["eval", "--checkpoint", foreign, "--data", ten, "--output",
                        os.path.join(tmp, "foreign-eval.h5")], DATA,
                       [foreign + ": the checkpoint's model", "unknown model 'foo'"])
    check.expect_error("eval: a second checkpoint (a shell glob)",
                       ["eval", "--checkpoint", ckpt, metrics, "--data", ten], USAGE,
                       [f"unexpected argument '{metrics}'"])
    # A batch larger than the test set: one batch of what there is (its buffers were sized
    # for the batch asked for: 10^8 images ended in std::bad_alloc, exit 1).
    code, err, _, _ = check.run(["eval", "--checkpoint", ckpt, "--data", ten, "--threads", "1",
                                 "--batch-size", "100000000", "--output",
                                 os.path.join(tmp, "big-batch.h5")])
    check.record(code == 0 and os.path.exists(os.path.join(tmp, "big-batch.h5")),
                 "eval: --batch-size 10^8 on 8 test images", f"exit {code} {err.strip()[-200:]}")
    # Refused after the run directory was made: it is removed again, as nothing was written.
    check.expect_error("--resume names a metrics file", train("--resume", metrics, run="wrong"),
                       DATA, ["not a checkpoint (a 'dptrain-metrics' file)", "metrics.h5"])
    check.record(not os.path.exists(os.path.join(out, "wrong")),
                 "--resume names a metrics file: no run directory left behind",
                 os.path.join(out, "wrong"))
    with h5py.File(ckpt, "r") as c, h5py.File(metrics, "r") as m:
        check.record("format_version" in c.attrs and len(m["history/epoch"]) == 1,
                     "eval: the refused outputs are intact", "checkpoint and metrics.h5 read")
    code, err, _, took = check.run(evaluate + [os.path.join(tmp, "e.h5")])
    again, err2, _, _ = check.run(evaluate + [os.path.join(tmp, "e.h5")])
    check.record(code == 0 and again == 0 and os.path.exists(os.path.join(tmp, "e.h5")),
                 "eval: writes a new --output, then replaces its own eval file",
                 f"exits {code}, {again} {(err + err2).strip()[-300:]}")

    # --resume auto in a run directory with metrics.h5 but no checkpoint starts again and sets
    # the old history aside instead of overwriting it.
    shutil.copytree(os.path.join(out, "ref"), os.path.join(out, "again"))
    for name in os.listdir(os.path.join(out, "again")):
        if name.startswith("checkpoint"):
            os.remove(os.path.join(out, "again", name))
    code, err, log, took = check.run(train("--resume", "auto", run="again"))
    aside = [n for n in os.listdir(os.path.join(out, "again"))
             if n.startswith("metrics.superseded-")]
    kept = False
    if len(aside) == 1:
        with h5py.File(os.path.join(out, "again", aside[0]), "r") as m:
            kept = len(m["history/epoch"]) == 1
    check.record(code == 0 and kept and f"kept as {os.path.join(out, 'again', aside[0])}" in log,
                 "--resume auto without a checkpoint keeps the old metrics.h5",
                 f"exit {code}, set aside {aside} {(err + log).strip()[-300:]}")

    # --overwrite replaces a run with more epochs: its checkpoints must not outrank the new
    # run's (pruned as newer, or resumed from by --resume auto).
    code, err, _, _ = check.run(train("--keep-checkpoints", "2", run="over", epochs="2"))
    again, err2, _, _ = check.run(train("--keep-checkpoints", "2", "--overwrite", run="over"))
    names = sorted(n for n in os.listdir(os.path.join(out, "over")) if n.startswith("checkpoint"))
    check.record(code == 0 and again == 0 and
                 names == ["checkpoint-e0001-s000002.h5", "checkpoint.h5"],
                 "--overwrite deletes the replaced run's checkpoints",
                 f"exits {code}, {again}: {names} {(err + err2).strip()[-300:]}")
    # An --overwrite whose new run fails at its first step (resnet18's ImageNet stem leaves 1x1
    # maps from 8x8 images: batch norm with one value per channel at batch 1) leaves the run it
    # was to replace as it was (it deleted it first).
    over = os.path.join(out, "over")
    before = {n: open(os.path.join(over, n), "rb").read() for n in os.listdir(over)
              if n.endswith(".h5")}
    check.expect_error("--overwrite by a run that fails at its first step",
                       train("--overwrite", run="over", arch="resnet18", batch_size="1"), USAGE,
                       ["batch norm", "more than one value per channel"], one_line=False)
    after = {n: open(os.path.join(over, n), "rb").read() for n in os.listdir(over)
             if n.endswith(".h5")}
    check.record(after == before and not os.path.exists(os.path.join(over, ".replaced")),
                 "that run left the one it was to replace byte for byte",
                 f"{sorted(before)} -> {sorted(after)}")

    # A run directory holding what a killed --overwrite job set aside: --resume auto continues
    # the run beside it and says it is there, leaving it.
    os.makedirs(os.path.join(over, ".replaced"))
    shutil.copy(os.path.join(over, "checkpoint.h5"), os.path.join(over, ".replaced"))
    code, err, log, _ = check.run(train("--resume", "auto", run="over", epochs="2"))
    check.record(code == 0 and ".replaced holds a run that a killed --overwrite job" in log
                 and os.path.exists(os.path.join(over, ".replaced", "checkpoint.h5")),
                 "--resume auto beside a leftover .replaced/ says so and leaves it",
                 f"exit {code} {(err + log).strip()[-300:]}")

    check.expect_error("eval: checkpoint for another class count",
                       ["eval", "--checkpoint", ckpt, "--data", five, "--threads", "1"], DATA,
                       ["checkpoint.h5", "10 classes", "five.h5 has 5 classes"])
    check.expect_error("eval: checkpoint for other class names",
                       ["eval", "--checkpoint", ckpt, "--data", renamed, "--threads", "1"], DATA,
                       ["checkpoint.h5", "other classes than",
                        "class 3 is 'c3' in the checkpoint, 'x3'"])
    check.expect_error("resume: checkpoint trained on other class names",
                       train("--resume", ckpt, data=renamed, run="v", epochs="2"),
                       DATA, ["--resume", "other data than", "class 3 is 'c3' in the checkpoint"])
    check.expect_error("resume: checkpoint trained on fewer training images",
                       train("--resume", ckpt, data=bigger, run="u", epochs="2"),
                       DATA, ["--resume", "32 training images in the checkpoint, 40 in --data"])
    check.expect_error("resume: checkpoint of another architecture",
                       train("--resume", ckpt, run="x", arch="resnet20", epochs="2"),
                       USAGE, ["--resume", "--arch resnet8", "resnet20"])
    check.expect_error("resume: checkpoint with the other shortcut",
                       train("--resume", ckpt, run="z", shortcut="B", epochs="2"),
                       USAGE, ["--resume", "--shortcut A", "this run has B"])
    check.expect_error("resume: checkpoint trained on normalised input, --normalize false",
                       train("--resume", ckpt, "--normalize", "false", run="n", epochs="2"),
                       USAGE, ["--resume", "--normalize true", "this run has false"])
    check.expect_error("resume: checkpoint for another class count",
                       train("--resume", ckpt, data=five, run="y", epochs="2"),
                       DATA, ["checkpoint.h5", "10 classes in the checkpoint, 5 in --data"])

    # A checkpoint from before --shortcut existed has no 'shortcut' attribute and was option B:
    # eval builds option B from it, and a resume with the default (option A) is refused.
    code, err, _, took = check.run(train(run="old", shortcut="B"))
    check.record(code == 0, "option-B run", f"exit {code} in {took:.1f} s {err.strip()[-300:]}")
    old = os.path.join(out, "old", "checkpoint.h5")
    with h5py.File(old, "r+") as f:  # the attribute and its entry in the list of string keys
        del f.attrs["shortcut"]
        keys = [k.decode() for k in f.attrs["string_keys"] if k != b"shortcut"]
        f.attrs["string_keys"] = np.array(keys, dtype=h5py.string_dtype())
    code, err, _, took = check.run(["eval", "--checkpoint", old, "--data", ten, "--threads", "1"])
    check.record(code == 0, "eval: a checkpoint without 'shortcut' is option B",
                 f"exit {code} in {took:.1f} s {err.strip()[-300:]}")
    check.expect_error("resume: an old (option-B) checkpoint under the default shortcut",
                       train("--resume", old, run="w", epochs="2"),
                       USAGE, ["--resume", "--shortcut B", "this run has A"])

    # One job at a time in a run directory: a second one continuing the same run (a repeated
    # sbatch) is refused while the first waits at step 2 of 4, which then stops after its
    # checkpoint (SIGUSR1, exit 7).
    first = subprocess.Popen([check.dptrain] + train("--pause-at-step", "2", run="busy",
                                                     epochs="2"),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    waiting = any("waiting at step 2" in line for line in first.stdout)
    check.expect_error("a second job in a run directory in use",
                       train("--resume", "auto", run="busy", epochs="2"), USAGE,
                       ["another dptrain job is writing this run directory", "busy"])
    first.send_signal(signal.SIGUSR1)
    first.communicate(timeout=60)
    check.record(waiting and first.returncode == EXIT["preempted"],
                 "the first job, paused meanwhile, stops after its checkpoint",
                 f"exit {first.returncode}")

    # Every rank must run the same configuration (mpirun MPMD: one argument list per rank): a
    # different --lr trains a wrong model, a different --epochs leaves a rank waiting alone.
    check.expect_error("--lr differs between ranks", [], USAGE,
                       ["option --lr", "rank 1 has '5'", "rank 0 has '0.1'"],
                       mpmd=[train(run="m", lr="0.1"), train(run="m", lr="5")], limit=60)
    check.expect_error("--epochs differs between ranks", [], USAGE,
                       ["option --epochs", "rank 1 has '2'", "rank 0 has '1'"],
                       mpmd=[train(run="m"), train(run="m", epochs="2")], limit=60)
    # A run directory that is not on a file system every rank sees (here: `out` under each
    # rank's own working directory) holds a checkpoint after epoch 2 for rank 0 and after
    # epoch 1 for rank 1: refused, naming both, exit 3 (input that differs between ranks).
    for run, epochs in (("e1", "1"), ("e2", "2")):
        code, err, _, _ = check.run(train(run=run, epochs=epochs))
        check.record(code == 0, f"a {epochs}-epoch run to resume", f"exit {code} {err[-300:]}")
    node_dirs = [os.path.join(tmp, "node0"), os.path.join(tmp, "node1")]
    for node, run in zip(node_dirs, ("e2", "e1")):
        os.makedirs(os.path.join(node, "out", "split"))
        shutil.copy(os.path.join(out, run, "checkpoint.h5"), os.path.join(node, "out", "split"))
    split = train("--resume", "auto", run="split", epochs="3", output_dir="out")
    check.expect_error("the ranks find different checkpoints", [], DATA,
                       ["option --resume", "rank 1 found", "1 epochs and 2 optimizer steps done",
                        "rank 0", "2 epochs and 4 optimizer steps done", "same checkpoint"],
                       mpmd=[split, split], wdirs=node_dirs, limit=60, one_line=False)
    # A node's own settings may differ (--threads; --data is compared by content).
    code, err, _, took = check.run([], mpmd=[train(run="t"), train(run="t", threads="2")],
                                   limit=120)
    check.record(code == 0, "--threads may differ between ranks",
                 f"exit {code} in {took:.1f} s {err.strip()[-300:]}")

check.finish()
