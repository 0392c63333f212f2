"""The check lines of the test scripts that run dptrain: every check prints `ok` or `FAIL` and
what it checks, a failed one does not stop the script (the later ones still say what they see),
and finish() exits non-zero, counting them, when any failed. `failures` is one list, mutated in
place, so a script may import it and look."""
import sys

failures = []


def check(ok, what):
    print(f"{'ok  ' if ok else 'FAIL'} {what}", flush=True)
    if not ok:
        failures.append(what)
    return ok


def finish():
    """Exits with status 1 and a line counting the failed checks, if there are any."""
    if failures:
        sys.exit(f"{len(failures)} check(s) failed")
