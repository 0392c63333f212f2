"""dptrain runs held at a known step by the test option --pause-at-step (a run is too quick to
hit a step by timing), so that a test can signal them there."""
import signal
import subprocess


def start_paused(command, step):
    """Starts COMMAND (with --pause-at-step STEP) and reads its output until it says it waits at
    that step. Returns the process, its stdout open after that line, and whether the line came
    (not when the run fails or ends first)."""
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in proc.stdout:
        if f"waiting at step {step}" in line:
            return proc, True
    return proc, False


def stop_at(command, step, timeout=120):
    """Runs COMMAND until it waits at STEP, sends it SIGUSR1 there (mpirun forwards SIGUSR1 to
    every rank) and waits for its end. Returns (exit code, stdout after the waiting line,
    stderr)."""
    proc, paused = start_paused(command, step)
    if paused:
        proc.send_signal(signal.SIGUSR1)
    stdout_rest, stderr = proc.communicate(timeout=timeout)
    return proc.returncode, stdout_rest, stderr
