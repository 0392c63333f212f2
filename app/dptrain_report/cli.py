"""The dptrain-report command: options, where outputs go, and one-line errors with exit codes
(never a traceback; DPTRAIN_REPORT_DEBUG=1 shows it for internal errors)."""
import argparse
import math
import os
import signal
import sys
import traceback

PROG = "dptrain-report"

DESCRIPTION = """\
Figures, tables and exports from dptrain runs (output/<run>/metrics.h5).

For each run: training_curves.{png,svg}, report.json, projection.md and, when the run finished
(/final exists), confusion_matrix{,_normalized}.{png,svg}, per_class_accuracy.{png,svg} and
classification_report.txt. With --baseline: comparison.md and scaling.{png,svg}.

Outputs go into each run directory (for another metrics file than a run's metrics.h5, such as
a metrics.superseded-*.h5 history, <its name>-report/ beside it), or into --out (one
subfolder per run when there are several runs). The comparison goes into --out, else the
baseline's run directory."""

EPILOG = """\
exit codes: 0 success; 1 internal error; 2 usage; 3 bad input (missing, not HDF5, malformed,
empty history, or a run without a final evaluation, whose curves are still written);
6 an output cannot be written."""


class _OneLineErrors(argparse.ArgumentParser):
    """argparse whose usage errors are one line (as every other error of the tool), without
    the usage block before it."""

    def error(self, message):
        print(f"{PROG}: error: {message} (see {PROG} --help)", file=sys.stderr)
        sys.exit(2)


def parse_args(argv):
    from .projection import DEFAULT_BANDWIDTH_GBS, DEFAULT_GPUS, DEFAULT_LATENCY_US

    p = _OneLineErrors(prog=PROG, description=DESCRIPTION, epilog=EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="+", metavar="RUN",
                   help="run directory (holding metrics.h5) or a metrics.h5 file")
    p.add_argument("--out", metavar="DIR", help="write here instead of into the run directories")
    p.add_argument("--baseline", metavar="RUN",
                   help="compare the RUNs against this one (typically 1 rank)")
    p.add_argument("--skip-epochs", type=int, default=0, metavar="K",
                   help="leave the first K epochs out of timing figures (warm-up); default 0")
    g = p.add_argument_group("projection (a model, not a measurement)")
    g.add_argument("--gpus", default=",".join(map(str, DEFAULT_GPUS)), metavar="LIST",
                   help="GPU counts to project, comma-separated (default %(default)s)")
    g.add_argument("--bandwidth-gbs", type=float, default=DEFAULT_BANDWIDTH_GBS, metavar="GB/S",
                   help="allreduce link bandwidth in GB/s (default %(default)s)")
    g.add_argument("--latency-us", type=float, default=DEFAULT_LATENCY_US, metavar="US",
                   help="latency per ring step in microseconds (default %(default)s)")
    size = g.add_mutually_exclusive_group()
    size.add_argument("--params", type=int, metavar="P",
                      help="parameter count (float32 gradients); default: counted in the "
                      "run's checkpoint.h5")
    size.add_argument("--gradient-bytes", type=int, metavar="BYTES",
                      help="gradient bytes per step, instead of --params")
    g.add_argument("--compute-ms", type=float, metavar="MS",
                   help="compute time per step per GPU; default: measured in the run")
    args = p.parse_args(argv)
    try:
        args.gpus = [int(n) for n in args.gpus.split(",")]
    except ValueError:
        p.error(f"--gpus {args.gpus}: expected comma-separated integers")
    for name, value, positive in (("--skip-epochs", args.skip_epochs, False),
                                  ("--bandwidth-gbs", args.bandwidth_gbs, True),
                                  ("--latency-us", args.latency_us, False),
                                  ("--params", args.params, True),
                                  ("--gradient-bytes", args.gradient_bytes, True),
                                  ("--compute-ms", args.compute_ms, True)):
        if value is not None and not (value > 0 if positive else value >= 0):
            p.error(f"{name} {value}: must be {'positive' if positive else 'non-negative'}")
        if value is not None and not math.isfinite(value):
            p.error(f"{name} {value}: must be finite")
    if min(args.gpus) < 2:
        p.error(f"--gpus {min(args.gpus)}: every GPU count must be at least 2 "
                "(1 GPU is the table's reference row)")
    return args


def _unique_output_dirs(args, runs):
    if args.out is None:
        return [run.directory for run in runs]
    if len(runs) == 1:
        return [args.out]
    dirs, taken = [], set()
    for run in runs:
        # abspath: a run given as "." or ".." is named for the folder it is (a link keeps its
        # own name).
        base = os.path.basename(os.path.abspath(run.directory)) or run.name
        name, n = base, 2
        while name in taken:
            name, n = f"{base}-{n}", n + 1
        taken.add(name)
        dirs.append(os.path.join(args.out, name))
    return dirs


def _makedirs(path):
    from .load import EXIT_OUTPUT, ReportError
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as e:
        raise ReportError(path, f"cannot create the output folder: {e.strerror or e}",
                          EXIT_OUTPUT)


def _write_text(path, text):
    from .output import replace_output

    return replace_output(path, lambda f: f.write(text.encode("utf-8")))


def _projection_inputs(args, run, timing):
    """The projection's inputs for `run`, or None (with the reason) when the gradient size is
    unknown."""
    from .load import EXIT_USAGE, ReportError, parameter_count
    from .projection import BYTES_PER_GRADIENT, ProjectionInputs, project

    if run.mixed_ranks:
        return None, (f"{run.metrics_path}: {run.mixed_ranks}: its step times mix them; "
                      "projection.md not written")
    world, batch = run.world_size, run.batch_size
    if batch % world:
        raise ReportError(run.metrics_path, f"/config batch-size {batch} is not a multiple of "
                          f"world-size {world}")
    per_rank = batch // world
    if args.gradient_bytes is not None:
        gradient_bytes, source = args.gradient_bytes, "--gradient-bytes"
    elif args.params is not None:
        gradient_bytes = BYTES_PER_GRADIENT * args.params
        source = f"--params {args.params:,} x {BYTES_PER_GRADIENT} bytes (float32)"
    elif run.checkpoint_path is not None:
        count = parameter_count(run.checkpoint_path)
        gradient_bytes = BYTES_PER_GRADIENT * count
        source = (f"{count:,} parameters counted in {run.checkpoint_path} x "
                  f"{BYTES_PER_GRADIENT} bytes (float32)")
    else:
        return None, (f"{run.metrics_path}: no checkpoint of this run to count the parameters; "
                      "projection.md not written (give --params or --gradient-bytes)")
    if args.compute_ms is not None:
        compute, compute_source = args.compute_ms / 1e3, "given with --compute-ms"
    else:
        last = timing.first_epoch + timing.epochs - 1
        compute = timing.compute_per_step
        compute_source = (f"measured in run {run.name}: forward + backward + optimizer, "
                          f"mean over {timing.steps} steps of epochs {timing.first_epoch}-{last} "
                          f"on rank 0 of {world}, {run.config.get('backend', 'unknown backend')}")
    inputs = ProjectionInputs(compute_seconds=compute, compute_source=compute_source,
                              per_rank_batch=per_rank, gradient_bytes=gradient_bytes,
                              gradient_source=source, bandwidth_gbs=args.bandwidth_gbs,
                              latency_us=args.latency_us, gpus=args.gpus)
    if not all(math.isfinite(r.step) and r.images_per_sec > 0 for r in project(inputs)):
        raise ReportError(run.metrics_path, f"the projection overflows with --bandwidth-gbs "
                          f"{args.bandwidth_gbs:g}, --latency-us {args.latency_us:g} and "
                          f"t_compute {compute:g} s", EXIT_USAGE)
    return inputs, None


# Every file a run's report may write. A report removes those it does not write again, so that
# none is left from an earlier report of the run (an epoch-1 confusion matrix beside curves of
# a run resumed and stopped since, a projection that can no longer be made).
RUN_OUTPUTS = [f"{stem}.{ext}" for stem in ("training_curves", "confusion_matrix",
                                            "confusion_matrix_normalized", "per_class_accuracy")
               for ext in ("png", "svg")] + ["report.json", "classification_report.txt",
                                             "projection.md"]
# And a comparison's (--baseline).
COMPARISON_OUTPUTS = ["comparison.md", "scaling.png", "scaling.svg"]


def _remove_stale_outputs(out_dir, written):
    """Removes the RUN_OUTPUTS of `out_dir` not among `written`; returns notes for stderr."""
    from .load import EXIT_OUTPUT, ReportError
    kept = {os.path.realpath(p) for p in written}
    notes = []
    for name in RUN_OUTPUTS:
        path = os.path.join(out_dir, name)
        if os.path.lexists(path) and os.path.realpath(path) not in kept:
            try:
                os.remove(path)
            except OSError as e:
                raise ReportError(path, f"cannot remove an earlier report's file: "
                                  f"{e.strerror or e}", EXIT_OUTPUT)
            notes.append(f"{path}: removed (an earlier report's, not written again)")
    return notes


def _report_run(args, run, out_dir, timing, projection_inputs):
    """Writes one run's outputs from the timing summary and projection inputs run() checked;
    returns (files, notes for stderr)."""
    from . import classification, export, figures, projection

    _makedirs(out_dir)
    files = figures.training_curves(run, out_dir)
    files.append(_write_text(os.path.join(out_dir, "report.json"),
                             export.run_json(run, timing)))
    notes = [f"{run.metrics_path}: warning: {w}" for w in run.warnings]
    if run.final is not None:
        files += figures.confusion_matrices(run, out_dir)
        files += figures.per_class_accuracy(run, out_dir)
        files.append(_write_text(
            os.path.join(out_dir, "classification_report.txt"),
            classification.classification_report(run.final.confusion, run.final.class_names)))
    inputs, why_not = projection_inputs
    if inputs is None:
        notes.append(f"warning: {why_not}")
    else:
        rows = projection.project(inputs)
        files.append(_write_text(os.path.join(out_dir, "projection.md"),
                                 projection.projection_markdown(inputs, rows)))
    notes += _remove_stale_outputs(out_dir, files)
    return files, notes


def run(argv):
    from .load import EXIT_DATA, EXIT_USAGE, ReportError, load_run

    args = parse_args(argv)
    # Read and check every input before writing anything.
    paths = ([args.baseline] if args.baseline else []) + args.runs
    runs, seen = [], set()
    for path in paths:
        loaded = load_run(path)
        key = os.path.realpath(loaded.metrics_path)
        if key not in seen:
            seen.add(key)
            runs.append(loaded)
    if args.baseline and len(runs) < 2:
        raise ReportError(args.baseline, "--baseline needs at least one other run to compare",
                          EXIT_USAGE)
    # matplotlib only now that the inputs are good: it is the slow import.
    from . import comparison, figures
    from .output import refuse_leftover_tmp
    out_dirs = _unique_output_dirs(args, runs)
    # What can still refuse an input (--skip-epochs, the checkpoint's parameter count, a rank
    # count to compare), for every run, before the first file is written.
    timings = [comparison.timing_summary(r, args.skip_epochs) for r in runs]
    projections = [_projection_inputs(args, r, t) for r, t in zip(runs, timings)]
    rows = comparison.compare(runs[0], runs[1:], args.skip_epochs) if args.baseline else None
    comparison_dir = ((args.out if args.out is not None else runs[0].directory) if args.baseline
                      else None)
    refuse_leftover_tmp([os.path.join(d, name) for d in out_dirs for name in RUN_OUTPUTS]
                        + ([os.path.join(comparison_dir, name) for name in COMPARISON_OUTPUTS]
                           if comparison_dir else []))
    incomplete = []
    for loaded, out_dir, timing, projection in zip(runs, out_dirs, timings, projections):
        files, notes = _report_run(args, loaded, out_dir, timing, projection)
        for note in notes:
            print(f"{PROG}: {note}", file=sys.stderr)
        print(f"{PROG}: {loaded.name}: wrote {len(files)} files into {out_dir}")
        if loaded.final is None:
            incomplete.append(loaded)
    if args.baseline:
        target = comparison_dir
        _makedirs(target)
        _write_text(os.path.join(target, "comparison.md"),
                    comparison.comparison_markdown(rows, args.skip_epochs))
        figures.scaling_plot(rows, target)
        print(f"{PROG}: comparison of {len(rows)} runs: wrote comparison.md and "
              f"scaling.{{png,svg}} into {target}")
    for r in incomplete:
        planned = r.epochs_planned
        state = ("is running (a job holds its directory's lock) and is at" if r.running
                 else "stopped after")
        print(f"{PROG}: error: {r.metrics_path}: no /final group: the run {state} "
              f"{r.epochs_done}" + (f" of {planned}" if planned else "") + " epochs and has no "
              "final evaluation, so no confusion matrix or classification report (its training "
              "curves, report.json and, where it could be made, projection.md were written)",
              file=sys.stderr)
    return EXIT_DATA if incomplete else 0


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    try:
        from .load import EXIT_INTERNAL, ReportError
    except ImportError as e:
        print(f"{PROG}: error: {e} (needs Debian's python3-h5py, python3-numpy and "
              "python3-matplotlib)", file=sys.stderr)
        return 1
    # SIGTERM and SIGHUP end the report as an exception would, so a file being written has its
    # .tmp removed (output.replace_output) instead of left behind.
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda number, _frame: sys.exit(128 + number))
    try:
        return run(argv)
    except ImportError as e:
        print(f"{PROG}: error: {e} (needs Debian's python3-h5py, python3-numpy and "
              "python3-matplotlib)", file=sys.stderr)
        return EXIT_INTERNAL
    except ReportError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        return 130
    except Exception as e:  # a bug: one line unless asked for the traceback
        if os.environ.get("DPTRAIN_REPORT_DEBUG"):
            traceback.print_exc()
        print(f"{PROG}: internal error: {type(e).__name__}: {e} "
              "(DPTRAIN_REPORT_DEBUG=1 shows the traceback)", file=sys.stderr)
        return EXIT_INTERNAL
