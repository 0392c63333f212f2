"""dptrain runs stopped on purpose: held at a known step by the test option --pause-at-step, or
in an evaluation by --pause-in-eval (a run is too quick to hit either by timing), so that a
test can signal them there; and the wait for a killed run's files to be released."""
import signal
import subprocess
import time

import h5py


def start_paused(command, step):
    """Starts COMMAND (with --pause-at-step STEP, or --pause-in-eval true when STEP is "eval")
    and reads its output until it says it waits there. Returns the process, its stdout open
    after that line, and whether the line came (not when the run fails or ends first)."""
    waiting = "waiting in the evaluation" if step == "eval" else f"waiting at step {step}"
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in proc.stdout:
        if waiting in line:
            return proc, True
    return proc, False


def stop_at(command, step, timeout=120, sig=signal.SIGUSR1, hold=0):
    """Runs COMMAND until it waits at STEP (start_paused), sends it SIG there (mpirun forwards
    SIGUSR1 and SIGTERM to every rank) HOLD seconds later and waits for its end. Returns (exit
    code, stdout after the waiting line, stderr)."""
    code, stdout_rest, stderr, _ = stop_held(command, step, lambda reached: hold, timeout, sig)
    return code, stdout_rest, stderr


def stop_held_as_long(command, step, timeout=120, sig=signal.SIGUSR1):
    """stop_at, holding the run at STEP as long as it took to get there (at least a second):
    time it counted while held then exceeds all it spent before, whatever the machine's load.
    Returns stop_at's three values and the seconds it took to reach STEP."""
    return stop_held(command, step, lambda reached: max(reached, 1.0), timeout, sig)


def stop_held(command, step, hold_for, timeout, sig):
    started = time.monotonic()
    proc, paused = start_paused(command, step)
    reached = time.monotonic() - started
    if paused:
        time.sleep(hold_for(reached))
        proc.send_signal(sig)
    stdout_rest, stderr = proc.communicate(timeout=timeout)
    return proc.returncode, stdout_rest, stderr, reached


def wait_released(path, limit=60):
    """After a rank is SIGKILLed, mpirun ends the others (SIGTERM, which dptrain takes as a
    stop request, then SIGKILL); rank 0 may outlive mpirun by a moment and still hold its HDF5
    file lock. Waits until the file opens for writing."""
    deadline = time.monotonic() + limit
    while True:
        try:
            h5py.File(path, "r+").close()
            return
        except BlockingIOError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
