"""Reads one run's metrics.h5 (layout in README.md, "Outputs"; written by
lib/io/metrics_writer.cpp) into plain numpy values, and validates it so that every later step
can trust what it gets. Problems raise ReportError with a one-line message naming the file."""
import fcntl
import math
import os
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import numpy as np

import h5py

from .classification import class_metrics

# Every /history dataset the writer creates (kHistoryFields in metrics_writer.cpp).
HISTORY_FIELDS = ("epoch", "steps", "lr", "train_loss", "train_acc", "val_loss", "val_acc",
                  "epoch_time", "images_per_sec", "time_data", "time_forward", "time_backward",
                  "time_comm", "time_comm_hidden", "time_optimizer", "time_eval",
                  "skipped_steps", "step_time_max", "step_time_min")

# Exit codes, as dptrain's (README, "Exit codes") where the meaning is the same.
EXIT_INTERNAL, EXIT_USAGE, EXIT_DATA, EXIT_OUTPUT = 1, 2, 3, 6


class ReportError(Exception):
    """A problem with the input or the output, reported as one line with the file it concerns."""

    def __init__(self, path, problem, exit_code=EXIT_DATA):
        super().__init__(f"{path}: {problem}")
        self.exit_code = exit_code


@dataclass
class FinalEvaluation:
    """/final: the evaluation after the last epoch."""
    class_names: List[str]
    confusion: np.ndarray  # int64 (K, K), rows = true class, columns = predicted
    accuracy: float
    loss: float
    samples: int
    # As stored by dptrain (checked against the confusion matrix on load).
    precision: np.ndarray
    recall: np.ndarray
    f1: np.ndarray
    support: np.ndarray
    tta: Optional[int] = None  # its --tta level; None in files written before the attribute


@dataclass
class Run:
    directory: str   # the run directory (where per-run outputs go by default)
    metrics_path: str
    name: str
    config: Dict[str, str]
    build: Dict[str, str]
    history: Dict[str, np.ndarray]  # every field float64, same length (>= 1)
    final: Optional[FinalEvaluation]
    checkpoint_path: Optional[str]
    warnings: List[str] = field(default_factory=list)
    # Each resume's effective options (/resumes/<n>/config), in order; /config is the first
    # job's. From files before that group: the world size only.
    resumes: List[Dict[str, str]] = field(default_factory=list)
    # Every step's LR (/steps/lr) at its place in epochs (step j of an epoch's n at epoch - 1 +
    # j / n; a cut-short last epoch as a part of a whole one, see _read_step_lr); None where
    # /steps is absent or unreadable (a warning says which).
    step_lr: Optional[Tuple[np.ndarray, np.ndarray]] = None
    # Whether a job is writing the run now (it holds the run directory's lock): a run without
    # /final is then running, not stopped.
    running: bool = False
    # A whole epoch's optimizer steps (/steps' steps_per_epoch: the last job's); 0 where the
    # file predates the attribute.
    steps_per_epoch: int = 0

    @property
    def epochs_done(self):
        return len(self.history["epoch"])

    @property
    def epochs_planned(self):
        """The epochs the last job's --epochs runs (a resume may extend the run): a fractional
        one (e.g. 9.9) runs ceil(E), the last one cut short."""
        epochs = _last_epochs_option(self.config, self.resumes)
        return math.ceil(epochs) if epochs is not None and math.isfinite(epochs) else None

    @property
    def world_sizes(self):
        """The rank counts of the run's jobs (as written), each once, in the order they ran."""
        sizes = [str(config_int(self, "world-size"))]
        for options in self.resumes:
            size = options.get("world-size")
            if size is not None and size not in sizes:
                sizes.append(size)
        return sizes

    @property
    def mixed_ranks(self):
        """For a run resumed on another number of ranks, what to call that ("resumed on
        another number of ranks (2, then 1)"); "" otherwise."""
        sizes = self.world_sizes
        if len(sizes) == 1:
            return ""
        return "resumed on another number of ranks (" + ", then ".join(sizes) + ")"

    @property
    def world_size(self):
        """The run's one rank count; a run resumed on another count has none (its timings mix
        them), which is refused."""
        if self.mixed_ranks:
            raise ReportError(self.metrics_path, f"{self.mixed_ranks}: its timings mix them, "
                              "so it has no one rank count to compare", EXIT_USAGE)
        return int(self.world_sizes[0])

    @property
    def batch_size(self):
        return config_int(self, "batch-size")


def config_int(run, key):
    value = run.config.get(key)
    if value is None:
        raise ReportError(run.metrics_path, f"/config attribute '{key}' missing")
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise ReportError(run.metrics_path, f"/config attribute '{key}' is '{value}', "
                          "not a positive integer")
    return number


def _text(value):
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, np.ndarray):
        return ",".join(_text(v) for v in value.tolist())
    return str(value)


def _attrs(node):
    return {key: _text(node.attrs[key]) for key in sorted(node.attrs.keys())}


def resolve_metrics_path(path):
    """A run directory (holding metrics.h5) or a metrics file itself: (the folder the report
    goes to, the metrics file, the checkpoint that belongs to it or None). Another metrics file
    than a run's metrics.h5 (a metrics.superseded-*.h5 history, a copy) reports into a folder
    named after it beside it, without a checkpoint: the run directory's report and checkpoint
    are its current run's."""
    if os.path.isdir(path):
        metrics = os.path.join(path, "metrics.h5")
        if not os.path.exists(metrics):
            raise ReportError(metrics, "missing: not a dptrain run directory")
        return path, metrics, os.path.join(path, "checkpoint.h5")
    if os.path.isfile(path):
        parent = os.path.dirname(os.path.abspath(path))
        if os.path.basename(path) == "metrics.h5":
            return parent, path, os.path.join(parent, "checkpoint.h5")
        stem = os.path.splitext(os.path.basename(path))[0]
        return os.path.join(parent, stem + "-report"), path, None
    if os.path.exists(path):
        raise ReportError(path, "not a run directory or a regular file (a pipe or a device)")
    raise ReportError(path, "no such run directory or file")


def load_run(path):
    directory, metrics, checkpoint = resolve_metrics_path(path)
    if not h5py.is_hdf5(metrics):
        raise ReportError(metrics, "not an HDF5 file")
    try:
        with h5py.File(metrics, "r") as f:
            return _read(f, directory, metrics, checkpoint)
    except (ReportError, NotImplementedError, RecursionError):  # ours, or a bug of the tool
        raise
    except (OSError, KeyError, ValueError, TypeError, RuntimeError) as e:
        # h5py raises these for truncated or otherwise unreadable objects (RuntimeError for
        # metadata whose checksum fails, as a group's attributes or links).
        raise ReportError(metrics, _unreadable(e))


def _held_by_a_job(directory):
    """Whether a dptrain job holds the run directory's .dptrain.lock (rank 0 holds an exclusive
    flock on it while the job writes the directory): a shared lock is then refused."""
    try:
        fd = os.open(os.path.join(directory, ".dptrain.lock"), os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    except OSError:  # a file system without flock: not known to run
        return False
    finally:
        os.close(fd)  # releases the lock taken, if any


def _unreadable(error):
    """The problem for an h5py read error: a checksum mismatch (dptrain writes a Fletcher-32
    checksum with every chunk, HDF5 checksums its metadata) means the file was corrupted."""
    if "checksum" in str(error).lower():
        return (f"checksum mismatch ({error}): the file is corrupted; restore it from a good "
                "copy (nothing is plotted from a corrupted file)")
    return f"unreadable: {error}"


_FNV1A64_OFFSET_BASIS = 0xcbf29ce484222325
_FNV1A64_PRIME = 0x100000001b3
_U64 = (1 << 64) - 1


def _strings_digest(values):
    """dptrain's digest of a string dataset (its dptrain_fnv1a64 attribute): FNV-1a-64 over
    each string's length, then its bytes, so ["ab", "c"] and ["a", "bc"] differ."""
    digest = _FNV1A64_OFFSET_BASIS
    for value in values:
        for word in (len(value), *value):
            digest = ((digest ^ word) * _FNV1A64_PRIME) & _U64
    return digest


def _check_strings_digest(data, values, metrics, where):
    """Refuses a string dataset whose bytes do not match its digest attribute (string datasets
    carry no Fletcher-32 checksum for HDF5 to check)."""
    stored = data.attrs.get("dptrain_fnv1a64")
    if stored is not None and int(stored) & _U64 != _strings_digest(values):
        raise ReportError(metrics, f"{where}: checksum mismatch (the strings do not match their "
                          "stored digest dptrain_fnv1a64): the file is corrupted; restore it "
                          "from a good copy (nothing is plotted from a corrupted file)")


def _read_values(data, metrics, where):
    """A dataset's values as float64; a failed read (a corrupted chunk) names the dataset."""
    try:
        return np.asarray(data[()], dtype=np.float64)
    except OSError as e:
        raise ReportError(metrics, f"{where}: {_unreadable(e)}")


def _read(f, directory, metrics, checkpoint):
    fmt = _text(f.attrs.get("format", ""))
    if fmt == "dptrain-eval" or (not fmt and "eval" in f and "checkpoint" in f.attrs):
        raise ReportError(metrics, "an eval file (`dptrain eval`'s output), not a metrics file: "
                          "the report reads run directories (their metrics.h5)")
    if fmt != "dptrain-metrics":
        raise ReportError(metrics, f"not a dptrain metrics file (format attribute is '{fmt}', "
                          "expected 'dptrain-metrics')")
    version = f.attrs.get("format_version")
    if version is None or int(version) != 1:
        raise ReportError(metrics, f"unsupported format_version {version} (this tool reads 1)")
    for group in ("config", "history"):
        if group not in f:
            raise ReportError(metrics, f"/{group} group missing")
    config = _attrs(f["config"])
    build = _attrs(f["build"]) if "build" in f else {}
    warnings = []
    history = _read_history(f["history"], metrics, warnings)
    final = _read_final(f["final"], metrics) if "final" in f else None
    name = config.get("run-name") or os.path.basename(os.path.normpath(directory))
    if os.path.basename(metrics) != "metrics.h5":  # a superseded history beside its run
        name = f"{name} ({os.path.basename(metrics)})"
    # /steps/epoch (a row per step) read once: where the rows end, and the LR curve's places.
    step_epoch = (_read_values(f["steps/epoch"], metrics, "/steps/epoch")
                  if "steps" in f and "epoch" in f["steps"] else None)
    resumes = _read_resumes(f, _end_position(history, step_epoch),
                            _steps_done(f, history, metrics))
    levels = _tta_levels(f, config, history, final)
    if len(set(levels.values())) > 1:
        warnings.append("the run's evaluations mix test-time augmentation levels ("
                        + ", ".join(f"--tta {v} {k}" for k, v in levels.items())
                        + "): its val_acc curve and its final accuracy may not be comparable")
    return Run(directory=directory, metrics_path=metrics, name=name, config=config, build=build,
               history=history, final=final,
               checkpoint_path=checkpoint if checkpoint and os.path.isfile(checkpoint) else None,
               warnings=warnings, resumes=resumes,
               step_lr=_read_step_lr(f, step_epoch, metrics, warnings, _cut_epochs(f, config)),
               running=(final is None and os.path.basename(metrics) == "metrics.h5"
                        and _held_by_a_job(directory)),
               steps_per_epoch=int(f["steps"].attrs.get("steps_per_epoch", 0))
               if "steps" in f else 0)


def _last_epochs_option(config, resumes):
    """The last job's --epochs as a number (a resume may extend the run), or None."""
    options = [config] + [r for r in resumes if "epochs" in r]
    try:
        return float(options[-1].get("epochs", ""))
    except ValueError:
        return None


def _cut_epochs(f, config):
    """The epochs some job's fractional --epochs E cut short (ceil(E)): the first job's and each
    resume's, also one that only evaluated again."""
    options = [config]
    if "resumes" in f:
        options += [_attrs(entry["config"]) for entry in f["resumes"].values()
                    if "config" in entry]
    cut = set()
    for o in options:
        try:
            epochs = float(o.get("epochs", "nan"))
        except ValueError:
            continue
        if math.isfinite(epochs) and epochs != math.floor(epochs):
            cut.add(math.ceil(epochs))
    return cut


def _read_step_lr(f, epoch, metrics, warnings, cut_epochs=()):
    """/steps/lr placed in epochs by /steps/epoch (`epoch`, its values or None where absent;
    1-based, one row per optimizer step): step j
    of an epoch's n at epoch - 1 + j / n, where n is the epoch's own rows but for an epoch cut
    short: the last (a stop, --stop-after-steps, a run in progress, a fractional --epochs E)
    takes /steps' steps_per_epoch attribute (the steps per epoch of the job that wrote it), so
    that its steps end where it stopped; an earlier one that a job's fractional --epochs E cut
    (epoch ceil(E), then resumed with a larger --epochs; `cut_epochs`) takes the epoch before's
    rows (the one after's where it is the first), where those are more; files written without
    that attribute take the epoch before's rows for a fractional --epochs' last epoch too. (An
    epoch that is merely shorter, where a resume changed the steps per epoch, keeps its own.) A
    corrupted one refuses the file (a ReportError), as a corrupted /history does."""
    if epoch is None or "lr" not in f["steps"]:
        return None
    lr = _read_values(f["steps/lr"], metrics, "/steps/lr")
    if epoch.ndim != 1 or epoch.shape != lr.shape or not np.all(np.isfinite(epoch)):
        warnings.append("/steps/epoch and /steps/lr do not pair up; the learning rate is drawn "
                        "per epoch")
        return None
    place = np.empty_like(epoch)
    steps_per_epoch = int(f["steps"].attrs.get("steps_per_epoch", 0))
    epochs = np.unique(epoch)
    rows_of = [np.flatnonzero(epoch == e) for e in epochs]
    for i, (e, rows) in enumerate(zip(epochs, rows_of)):
        before = len(rows_of[i - 1]) if i > 0 else None
        after = len(rows_of[i + 1]) if i + 1 < len(rows_of) else None
        steps = len(rows)
        whole = before if before is not None else after
        if int(e) in cut_epochs and whole is not None and whole > steps:
            steps = whole  # a fractional --epochs' cut epoch
        if after is None and steps_per_epoch > 0:
            steps = max(steps_per_epoch, len(rows))
        place[rows] = e - 1 + np.arange(1, len(rows) + 1) / steps
    return place, lr


def _tta_levels(f, config, history, final):
    """The --tta of each job whose epochs hold an evaluation (the first job's epochs run to the
    first resume's, each resume's to the next's), and of /final, by where they are recorded."""
    jobs = [("in /config", config.get("tta", "0"), 0)]
    if "resumes" in f:
        for key in sorted(f["resumes"].keys(), key=lambda k: int(k) if k.isdigit() else 0):
            entry = f["resumes"][key]
            if "config" in entry and "tta" in entry["config"].attrs:
                start = int(_text(entry.attrs.get("epochs_done", "0")))
                jobs.append((f"in /resumes/{key}", _text(entry["config"].attrs["tta"]), start))
    evaluated = history["epoch"][np.isfinite(history["val_acc"])]
    levels = {}
    for k, (where, level, start) in enumerate(jobs):
        stop = jobs[k + 1][2] if k + 1 < len(jobs) else math.inf
        if np.any((evaluated > start) & (evaluated <= stop)):
            levels[where] = level
    if final is not None and final.tta is not None:
        levels["in /final"] = str(final.tta)
    return levels


def _end_position(history, step_epoch):
    """Where the run's rows end, as (finished epochs, steps into the next): /history's rows, and
    the /steps rows (`step_epoch`: /steps/epoch, or None) past the last finished epoch (a run
    stopped inside an epoch)."""
    epochs = len(history["epoch"])
    into = 0 if step_epoch is None else int(np.count_nonzero(step_epoch == epochs + 1))
    return epochs, into


def _steps_done(f, history, metrics):
    """The run's optimizer steps so far: the last /steps row's step, else /history's sum."""
    if "steps" in f and "step" in f["steps"] and len(f["steps/step"]) > 0:
        return int(_read_values(f["steps/step"], metrics, "/steps/step")[-1])
    return int(np.sum(history["steps"]))


def _read_resumes(f, end, steps_done):
    """The options of each job that resumed the run and trained (a job that resumed from where
    the rows end, `end` = (finished epochs, steps into the next): a finished run evaluated
    again, ran no step on its rank count). Positions, not step numbers: a resume on fewer steps
    per epoch counts the steps before it anew; an entry without its position (hand-made) is
    placed by its step against `steps_done`."""
    if "resumes" not in f:
        return []
    group = f["resumes"]
    entries = []
    # /resumes/1, 2, ... in numeric order.
    for key in sorted(group.keys(), key=lambda k: (not k.isdigit(), int(k) if k.isdigit() else 0)):
        entry = group[key]
        if "epochs_done" in entry.attrs and "step_in_epoch" in entry.attrs:
            at = (int(_text(entry.attrs["epochs_done"])), int(_text(entry.attrs["step_in_epoch"])))
            if at >= end:
                continue
        elif "step" in entry.attrs and int(_text(entry.attrs["step"])) >= steps_done:
            continue
        options = _attrs(entry["config"]) if "config" in entry else {}
        if "world-size" not in options and "world_size" in entry.attrs:
            options["world-size"] = _text(entry.attrs["world_size"])
        entries.append(options)
    return entries


def _read_history(group, metrics, warnings):
    history = {}
    for name in HISTORY_FIELDS:
        if name not in group:
            raise ReportError(metrics, f"/history/{name} missing")
        data = group[name]
        if not isinstance(data, h5py.Dataset) or data.ndim != 1:
            raise ReportError(metrics, f"/history/{name} is not a one-dimensional dataset")
        history[name] = _read_values(data, metrics, f"/history/{name}")
    lengths = {len(v) for v in history.values()}
    rows = min(lengths)
    if rows == 0:
        raise ReportError(metrics, "empty history: no epoch finished, nothing to report")
    if len(lengths) > 1:
        # The writer appends field by field, so a crash mid-epoch-record can leave some fields
        # one row longer; the rows every field has are the finished epochs.
        warnings.append(f"/history fields have {min(lengths)} to {max(lengths)} rows "
                        f"(a crash while appending an epoch): using the first {rows}")
        history = {k: v[:rows] for k, v in history.items()}
    # Fields added by later dptrain versions travel along into report.json.
    for name in sorted(group.keys()):
        data = group[name]
        if (name not in history and isinstance(data, h5py.Dataset) and data.ndim == 1
                and data.dtype.kind in "fiu" and len(data) >= rows):
            history[name] = _read_values(data, metrics, f"/history/{name}")[:rows]
    # Evaluation may be skipped on some epochs (NaN by design), and an epoch whose every step
    # was skipped as non-finite has no training loss or accuracy; nothing else may be missing.
    all_skipped = history["skipped_steps"] >= history["steps"]
    for name in HISTORY_FIELDS:
        values = history[name]
        if name in ("val_loss", "val_acc", "step_time_max", "step_time_min"):
            continue
        bad = ~np.isfinite(values)
        if name in ("train_loss", "train_acc"):
            bad &= ~all_skipped
        bad = np.flatnonzero(bad)
        if bad.size:
            raise ReportError(metrics, f"/history/{name} is not finite at epoch "
                              f"{int(history['epoch'][bad[0]])}")
    return history


def _read_final(group, metrics):
    def dataset(name):
        if name not in group:
            raise ReportError(metrics, f"/final/{name} missing")
        try:
            return group[name][()]
        except OSError as e:  # a corrupted chunk: name the dataset
            raise ReportError(metrics, f"/final/{name}: {_unreadable(e)}")

    confusion = np.asarray(dataset("confusion_matrix"))
    raw_names = [bytes(n) for n in np.asarray(dataset("class_names")).reshape(-1)]
    _check_strings_digest(group["class_names"], raw_names, metrics, "/final/class_names")
    names = [_text(n) for n in raw_names]
    k = len(names)
    if confusion.shape != (k, k) or k == 0:
        raise ReportError(metrics, f"/final/confusion_matrix has shape {confusion.shape}, "
                          f"expected ({k}, {k}) for {k} class names")
    if confusion.dtype.kind not in "iu" or (confusion < 0).any():
        raise ReportError(metrics, "/final/confusion_matrix must hold non-negative integers")
    confusion = confusion.astype(np.int64)
    per_class = {}
    for name, kind in (("precision", "f"), ("recall", "f"), ("f1", "f"), ("support", "iu")):
        values = np.asarray(dataset(name))
        if values.shape != (k,) or values.dtype.kind not in kind:
            expected = "float" if kind == "f" else "int"
            raise ReportError(metrics, f"/final/{name} has shape {values.shape} and type "
                              f"{values.dtype}, expected ({k},) {expected}")
        per_class[name] = values
    attrs = {}
    for name in ("accuracy", "loss", "samples"):
        if name not in group.attrs:
            raise ReportError(metrics, f"/final attribute '{name}' missing")
        attrs[name] = group.attrs[name]
    samples = int(attrs["samples"])
    total = int(confusion.sum())
    if samples != total:
        raise ReportError(metrics, f"/final samples attribute {samples} differs from the "
                          f"confusion matrix total {total}")
    if total == 0:
        raise ReportError(metrics, "/final/confusion_matrix is empty (0 samples evaluated)")
    if not np.array_equal(per_class["support"], confusion.sum(axis=1)):
        raise ReportError(metrics, "/final/support differs from the confusion matrix row sums")
    accuracy = float(attrs["accuracy"])
    if not math.isclose(accuracy, np.trace(confusion) / total, rel_tol=1e-9, abs_tol=1e-12):
        raise ReportError(metrics, f"/final accuracy attribute {accuracy} differs from the "
                          f"confusion matrix ({np.trace(confusion)}/{total})")
    # dptrain derives these from the confusion matrix; a mismatch means a damaged file.
    derived = class_metrics(confusion)
    for name in ("precision", "recall", "f1"):
        if not np.allclose(per_class[name], getattr(derived, name), rtol=1e-9, atol=1e-12):
            raise ReportError(metrics, f"/final/{name} differs from the confusion matrix")
    return FinalEvaluation(class_names=names, confusion=confusion, accuracy=accuracy,
                           loss=float(attrs["loss"]), samples=samples,
                           precision=per_class["precision"].astype(np.float64),
                           recall=per_class["recall"].astype(np.float64),
                           f1=per_class["f1"].astype(np.float64),
                           support=per_class["support"].astype(np.int64),
                           tta=int(group.attrs["tta"]) if "tta" in group.attrs else None)


def parameter_count(checkpoint_path):
    """Parameters in a checkpoint (/params, float32; fixed ones such as airbench's BN scales
    included): the gradient size the projection takes the allreduce to move each step."""
    try:
        with h5py.File(checkpoint_path, "r") as f:
            params = f["params"]
            return int(sum(int(np.prod(params[name].shape)) for name in params))
    except (OSError, KeyError, RuntimeError) as e:
        raise ReportError(checkpoint_path, f"cannot read /params: {e}")
