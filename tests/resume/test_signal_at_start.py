"""SIGUSR1 while a run is starting, before its options are read (a preemption or Slurm's
time-limit warning that comes as the job starts): the signal does not end the rank; the run
stops after its first step with a checkpoint (exit 7), and --resume auto finishes it as the
uninterrupted run, bit for bit. The options come through a named pipe, as `--config <(...)`
gives them, which holds the start at a known point: the run opens the pipe and waits for its
writer (up to the config pipe's wait, 30 s).

usage: test_signal_at_start.py DPTRAIN"""
import os
import signal
import subprocess
import sys
import tempfile
import time

import h5py

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "comm"))
sys.path.insert(0, HERE)
from checks import check, finish  # noqa: E402
from run_snapshot import differences, snapshot  # noqa: E402
from tiny_dataset import run_command, text_attrs, write_tiny_dataset  # noqa: E402

DPTRAIN = sys.argv[1]
EXIT_PREEMPTED = 7


def waits_for_a_pipe_writer(pid, pipe):
    """Whether the process holds `pipe` open (then waits for its writer: nobody writes yet)."""
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for fd in fds:
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") == os.path.realpath(pipe):
                return True
        except OSError:
            pass
    return False


with tempfile.TemporaryDirectory() as tmp:
    data = os.path.join(tmp, "tiny.h5")
    write_tiny_dataset(data)
    out = os.path.join(tmp, "out")
    options = f"data = {data}\narch = resnet8\nepochs = 2\nbatch-size = 16\nlr = 0.05\n"
    plain = os.path.join(tmp, "plain.cfg")
    with open(plain, "w") as f:
        f.write(options)
    common = ["--threads", "1", "--output-dir", out]

    code, _, stderr = run_command([DPTRAIN, "train", "--config", plain, "--run-name", "straight"]
                                  + common)
    check(code == 0, f"the uninterrupted run (exit {code}) {stderr[-300:]}")

    pipe = os.path.join(tmp, "options.cfg")
    os.mkfifo(pipe)
    signalled = [DPTRAIN, "train", "--config", pipe, "--run-name", "signalled",
                 "--resume", "auto"] + common
    proc = subprocess.Popen(signalled, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not waits_for_a_pipe_writer(proc.pid, pipe) and proc.poll() is None \
            and time.monotonic() < deadline:
        time.sleep(0.05)
    held = waits_for_a_pipe_writer(proc.pid, pipe)
    check(held, "the run waits to read its options from the pipe")
    proc.send_signal(signal.SIGUSR1)
    time.sleep(0.3)
    check(proc.poll() is None, f"SIGUSR1 before the options are read does not end the rank "
          f"(exit {proc.returncode})")
    if held and proc.poll() is None:
        with open(pipe, "w") as f:  # the text, then the end, let the reader go on
            f.write(options)
    stdout, stderr = proc.communicate(timeout=240)
    checkpoint = os.path.join(out, "signalled", "checkpoint.h5")
    at = None
    if os.path.exists(checkpoint):
        with h5py.File(checkpoint, "r") as f:
            attrs = text_attrs(f)
            at = (attrs["step"], attrs["trigger"])
    check(proc.returncode == EXIT_PREEMPTED and at == (1, "signal")
          and "stopping on SIGUSR1" in stdout,
          f"the run stops after its first step with a checkpoint: exit {proc.returncode}, "
          f"checkpoint (step, trigger) {at} {stderr[-500:]}")

    code, _, stderr = run_command([DPTRAIN, "train", "--config", plain, "--run-name", "signalled",
                                   "--resume", "auto"] + common)
    differ = differences(snapshot(os.path.join(out, "straight")),
                         snapshot(os.path.join(out, "signalled")))
    check(code == 0 and not differ,
          f"resumed: exit {code}, equal to the uninterrupted run bit for bit ({differ[:5]}) "
          f"{stderr[-300:]}")

finish()
