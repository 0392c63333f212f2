"""Shared by the reliability tests: running dptrain (alone or under mpirun) with a time limit and
checking how it failed: exit code, exactly one `dptrain: error:` line naming what it must name,
no traceback, and no hang (a run still going at its time limit is killed and fails the case)."""
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "comm"))
from tiny_dataset import mpirun_command, text_attrs, write_tiny_dataset  # noqa: E402,F401

EXIT = {"ok": 0, "internal": 1, "usage": 2, "data": 3, "numerical": 4, "communication": 5,
        "io": 6, "preempted": 7}
# dptrain's error lines: "dptrain: error: ..." alone, "dptrain: rank N: error: ..." under mpirun.
ERROR_LINE = re.compile(r"^dptrain: (rank \d+: )?error: ")


class Checker:
    def __init__(self, dptrain, mpiexec):
        self.dptrain, self.mpiexec = dptrain, mpiexec
        self.failures = []

    def run(self, args, ranks=1, limit=60, mpmd=None, wdirs=None, **popen):
        """Runs dptrain ARGS (under mpirun with `ranks` ranks when ranks > 1; `mpmd` gives one
        argument list per rank instead, and `wdirs` each such rank's working directory).
        Returns (exit code or None on timeout, stderr, stdout, seconds)."""
        if mpmd:
            where = [["-wdir", w] for w in wdirs] if wdirs else [[] for _ in mpmd]
            cmd = mpirun_command(self.mpiexec, 1, where[0] + [self.dptrain] + mpmd[0])
            for rank_where, rank_args in zip(where[1:], mpmd[1:]):
                cmd += [":", "-np", "1"] + rank_where + [self.dptrain] + rank_args
        elif ranks > 1:
            cmd = mpirun_command(self.mpiexec, ranks, [self.dptrain] + args)
        else:
            cmd = [self.dptrain] + args
        start = time.monotonic()
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=limit, **popen)
            code, err, out = proc.returncode, proc.stderr, proc.stdout
        except subprocess.TimeoutExpired as e:
            code = None
            err = e.stderr.decode(errors="replace") if e.stderr else ""
            out = e.stdout.decode(errors="replace") if e.stdout else ""
        return code, err, out, time.monotonic() - start

    def expect_error(self, name, args, code, mentions, ranks=1, limit=60, mpmd=None, wdirs=None,
                     one_line=True, **popen):
        """The run must fail with `code` (a run killed at `limit` seconds counts as hung), with
        one error line that holds every string of `mentions`, and no library's own dump (a
        Python traceback, HDF5's error stack) beside it."""
        got, err, out, took = self.run(args, ranks, limit, mpmd, wdirs, **popen)
        lines = [l for l in err.splitlines() if ERROR_LINE.match(l)]
        ok = got == code and lines and "Traceback" not in err and "HDF5-DIAG" not in err
        if one_line:
            ok = ok and len(lines) == 1 and all(m in lines[0] for m in mentions)
        else:  # one line per rank, say: one of them must say it all
            ok = ok and any(all(m in line for m in mentions) for line in lines)
        self.record(ok, name, f"exit {got} (want {code}) in {took:.1f} s: "
                    f"{lines[0] if lines else err.strip()[-300:]}")
        if not ok:
            print("   stderr:", err[-2000:].replace("\n", "\n   "))
        return err, out

    def record(self, ok, name, detail):
        print(f"{'ok  ' if ok else 'FAIL'} {name}: {detail}", flush=True)
        if not ok:
            self.failures.append(name)

    def finish(self):
        if self.failures:
            sys.exit(f"{len(self.failures)} case(s) failed: {self.failures}")
        print("all cases passed")
