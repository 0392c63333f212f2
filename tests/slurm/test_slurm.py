"""The sbatch scripts on a real Slurm: starts munged, slurmctld and slurmd on this machine
(tests/slurm/local_cluster.sh: one node, a CPU partition, everything in a scratch directory),
then
  1. `sbatch slurm/train_2gpu.sh --run-name "plain run" --threads 1` with DEVICE=cpu (and
     --gpus-per-node=0) on a tiny config: two ranks launched by srun, the script's arguments
     passed to dptrain word for word (--threads in place of the wrapper's), outputs complete;
  2. the same job, with no run name (neither RUN_NAME nor the config gives one), sent SIGUSR1
     mid-run (scancel --signal=USR1, while the test option --pause-at-step, a script
     argument, holds it at a known step): dptrain checkpoints, requeues its own job and exits
     7; the requeued job, given the same arguments again, finds its run (named for the job)
     and resumes it (--resume auto), finishing with the same result, bit for bit, as job 1;
  3. a job cancelled mid-run (scancel: SIGTERM; --pause-at-step from EXTRA_ARGS):
     checkpointed, and not requeued;
  4. the script run in an interactive allocation (`salloc ... bash slurm/train_2gpu.sh`), which
     Slurm cannot requeue: SIGUSR1 mid-run checkpoints and exits 7 without trying to requeue;
     run again, it resumes, and SIGUSR1 at its last step lets it finish (exit 0), since no
     requeued job would; the run equals job 1's, bit for bit.
Exits 77 (CTest: skipped, with the reason printed) only where this machine lacks Slurm or
munge (local_cluster.sh start exits 77); any other failure to start the cluster is a test
failure, with local_cluster.sh's output and the daemons' logs shown. The daemons are stopped
at the end, whatever happens.

usage: test_slurm.py DPTRAIN REPOSITORY_ROOT"""
import os
import re
import socket
import subprocess
import sys
import tempfile
import time

import h5py

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "comm"))
sys.path.insert(0, os.path.join(HERE, "..", "resume"))
from checks import check, failures, finish  # noqa: E402
from run_snapshot import differences, snapshot  # noqa: E402
from tiny_dataset import text_attrs, write_tiny_dataset  # noqa: E402


DPTRAIN, REPO = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
SKIP = 77
EPOCHS, STEPS_PER_EPOCH = 6, 13
PAUSE_STEP = 4


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def job_field(env, job, field):
    text = subprocess.run(["scontrol", "show", "job", job], env=env, capture_output=True,
                          text=True).stdout
    for word in text.split():
        if word.startswith(field + "="):
            return word.split("=", 1)[1]
    return None


def wait_for(predicate, limit, what):
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    print(f"timed out after {limit} s waiting for {what}")
    return False


def read(path):
    try:
        with open(path) as f:
            return f.read()
    except FileNotFoundError:
        return ""


def check_gpu_requests():
    """The scripts ask for GPUs per node: per task, NCCL's ranks cannot see each other's GPUs
    (slurm/README.md, "GPUs")."""
    for name in sorted(os.listdir(os.path.join(REPO, "slurm"))):
        if name.endswith(".sh"):
            # #SBATCH lines and commands; prose comments ("# ...") may name the option
            asks = [line for line in read(os.path.join(REPO, "slurm", name)).splitlines()
                    if "--gpus-per-task" in line and not line.startswith("# ")]
            check(not asks, f"slurm/{name} asks for no GPUs per task {asks}")


def main(tmp):
    check_gpu_requests()
    cluster = os.path.join(tmp, "cluster")
    env = dict(os.environ, DP_SLURMCTLD_PORT=str(free_port()), DP_SLURMD_PORT=str(free_port()))
    start = subprocess.run([os.path.join(HERE, "local_cluster.sh"), "start", cluster], env=env,
                           capture_output=True, text=True, timeout=120)
    if start.returncode == SKIP:
        print(f"SKIPPED: this machine has no Slurm: {start.stderr.strip()}")
        return SKIP
    try:
        check(start.returncode == 0, f"local_cluster.sh start: exit {start.returncode}\n"
              f"{start.stdout.strip()}\n{start.stderr.strip()}")
        if start.returncode != 0:
            return 1
        return run_jobs(tmp, dict(env, SLURM_CONF=os.path.join(cluster, "slurm.conf")))
    finally:
        subprocess.run(["scancel", "--user", "root"], env=dict(env, SLURM_CONF=os.path.join(
            cluster, "slurm.conf")), capture_output=True, timeout=30)
        subprocess.run([os.path.join(HERE, "local_cluster.sh"), "stop", cluster], env=env,
                       timeout=60)


def run_jobs(tmp, env):
    data = os.path.join(tmp, "tiny.h5")
    write_tiny_dataset(data)
    config = os.path.join(tmp, "tiny.cfg")
    with open(config, "w") as f:
        f.write(f"data = {data}\narch = resnet8\nepochs = {EPOCHS}\nbatch-size = 16\n"
                "lr-schedule = onecycle\ncrop-padding = 2\nlog-every = 1\nbucket-mb = 0.05\n")
    out = os.path.join(tmp, "out")
    job_env = dict(env, DEVICE="cpu", CONFIG=config, OUTPUT_DIR=out, DPTRAIN=DPTRAIN,
                   OMP_NUM_THREADS="1")
    # A CPU partition has no GPUs to give: --gpus-per-node=0 overrides the script's #SBATCH
    # line (running the script directly with DEVICE=cpu does the same, see slurm/).
    sbatch = ["sbatch", "--parsable", "--gpus-per-node=0", "--cpus-per-task=1",
              "--output", os.path.join(tmp, "job-%j.out"), "slurm/train_2gpu.sh"]

    # 1. A plain run to the end.
    started = time.monotonic()
    # --threads replaces the wrapper's own (from the CPUs Slurm gives a task)
    plain = subprocess.run(["sbatch", "--wait"] + sbatch[1:] +
                           ["--run-name", "plain run", "--threads", "1"],
                           cwd=REPO, capture_output=True, text=True, env=job_env, timeout=300)
    job = plain.stdout.strip().split(";")[0]
    log = read(os.path.join(tmp, f"job-{job}.out"))
    check(plain.returncode == 0, f"sbatch --wait slurm/train_2gpu.sh: job {job} exit "
          f"{plain.returncode} in {time.monotonic() - started:.1f} s {plain.stderr[-300:]}\n{log[-1500:]}")
    check("2 ranks x batch 8" in log, "srun started 2 MPI ranks")
    check(r"--run-name plain\ run --threads 1" in log and log.count("--threads") == 1,
          "the script's arguments passed on word for word, replacing the wrapper's --threads")
    metrics = os.path.join(out, "plain run", "metrics.h5")
    if not os.path.exists(metrics):
        check(False, "job 1 wrote metrics.h5")
        return 1
    with h5py.File(metrics, "r") as f:
        check(list(f["history/epoch"][:]) == list(range(1, EPOCHS + 1)), f"{EPOCHS} epochs recorded")
        check(text_attrs(f["config"])["world-size"] == "2", "world size 2 recorded")
        check(f["final/confusion_matrix"][:].sum() == 40, "final evaluation of all 40 test images")
    reference = snapshot(os.path.join(out, "plain run"))

    # 2. SIGUSR1 at step 4: checkpoint, requeue, exit 7; the requeued job resumes. The whole
    # run takes about a second, so the test option --pause-at-step holds every rank at step 4
    # until the signal is there; without it the signal could land after the last step. The
    # requeued attempt runs with the same options and passes step 4 at once (the signal flag
    # starts clear, but it resumes after step 4).
    started = time.monotonic()
    submitted = subprocess.run(sbatch + ["--pause-at-step", str(PAUSE_STEP)], cwd=REPO,
                               capture_output=True, text=True, env=job_env, timeout=60)
    job = submitted.stdout.strip().split(";")[0]
    log_path = os.path.join(tmp, f"job-{job}.out")
    check(submitted.returncode == 0 and job.isdigit(), f"job 2 submitted ({job})")
    if not wait_for(lambda: f"waiting at step {PAUSE_STEP}" in read(log_path), 120,
                    f"job 2 to pause at step {PAUSE_STEP}"):
        check(False, f"job 2 started training:\n{read(log_path)[-1500:]}")
        return 1
    subprocess.run(["scancel", "--signal=USR1", job], env=env, check=True, timeout=30)
    requeued = wait_for(lambda: job_field(env, job, "Restarts") == "1", 60, "the requeue")
    check(requeued, f"job {job} requeued itself (Restarts=1)")
    # Slurm holds a requeued job back for about two minutes (its EligibleTime); once it is
    # pending again, let it start now so the test stays short. The requeue itself is the job's
    # own doing.
    wait_for(lambda: job_field(env, job, "JobState") == "PENDING", 60, "the job to be pending")
    update = subprocess.run(["scontrol", "update", f"JobId={job}", "StartTime=now"], env=env,
                            capture_output=True, text=True, timeout=30)
    print(f"scontrol update StartTime=now: exit {update.returncode} {update.stderr.strip()}")
    finished = wait_for(lambda: job_field(env, job, "JobState") in
                        ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL"), 180,
                        "job 2 to finish")
    state = job_field(env, job, "JobState")
    log = read(log_path)
    check(finished and state == "COMPLETED",
          f"the requeued job completed ({state}) in {time.monotonic() - started:.1f} s")
    check("stopping on SIGUSR1" in log and "requeued Slurm job" in log,
          "first attempt: stopped on SIGUSR1 and requeued")
    check("(restart 1)" in log and "resumed from" in log, "second attempt resumed the checkpoint")
    restart = [line for line in log.splitlines() if "(restart 1)" in line]
    check(bool(restart) and restart[0].endswith(f" --pause-at-step {PAUSE_STEP}"),
          f"the requeued job was given the script's arguments again: {restart[:1]}")
    if failures:
        print(log[-3000:])
        return 1
    requeued_run = os.path.join(out, f"resnet8-tiny-slurm{job}")  # the default name in a job
    check(os.path.isdir(requeued_run), f"the run is named for its job: {sorted(os.listdir(out))}")
    if failures:
        return 1
    with h5py.File(os.path.join(requeued_run, "metrics.h5"), "r") as f:
        resume = text_attrs(f["resumes/1"])
        check(resume["slurm_job_id"] == job and resume["slurm_restart_count"] == "1",
              f"metrics.h5 /resumes/1 records job {job}, restart 1")
        stopped = int(resume["step"])
        check(stopped == PAUSE_STEP, f"stopped at step {stopped}, the step it was signalled at")
    differ = differences(reference, snapshot(requeued_run))
    check(not differ, f"requeued run == uninterrupted run, bitwise ({differ[:5]})")

    # 3. scancel (SIGTERM, as preemption and the time limit send it): the checkpoint is
    # written, but a job its user cancelled stays cancelled (`scontrol requeue` would requeue
    # even a finished job).
    submitted = subprocess.run(sbatch, cwd=REPO, capture_output=True, text=True,
                               env=dict(job_env, RUN_NAME="cancelled",
                                        EXTRA_ARGS=f"--pause-at-step {PAUSE_STEP}"), timeout=60)
    job = submitted.stdout.strip().split(";")[0]
    log_path = os.path.join(tmp, f"job-{job}.out")
    if not wait_for(lambda: f"waiting at step {PAUSE_STEP}" in read(log_path), 120,
                    f"job 3 to pause at step {PAUSE_STEP}"):
        check(False, f"job 3 started training:\n{read(log_path)[-1500:]}")
        return 1
    subprocess.run(["scancel", job], env=env, check=True, timeout=30)
    wait_for(lambda: "not requeued" in read(log_path) or "requeued Slurm job" in read(log_path),
             60, "job 3 to stop")
    wait_for(lambda: job_field(env, job, "JobState") == "CANCELLED", 60, "job 3 to end")
    time.sleep(2)  # a requeue would show by now
    log = read(log_path)
    check(job_field(env, job, "JobState") == "CANCELLED" and job_field(env, job, "Restarts") == "0",
          f"scancel: job {job} stays cancelled ({job_field(env, job, 'JobState')}, Restarts="
          f"{job_field(env, job, 'Restarts')})")
    check("stopping on SIGTERM" in log
          and f"Slurm job {job} not requeued: it is ending before its time limit" in log
          and os.path.exists(os.path.join(out, "cancelled", "checkpoint.h5")),
          "scancel: checkpoint written, the job not requeued")
    if failures:
        print(log[-3000:])
        return 1
    return run_interactive(tmp, env, job_env, reference)


def run_interactive(tmp, env, job_env, reference):
    """Case 4: salloc, not sbatch. Returns the test's exit code."""
    last_step = EPOCHS * STEPS_PER_EPOCH
    name = "dptrain-interactive"
    salloc = ["salloc", "--job-name", name, "--ntasks=2", "--cpus-per-task=1",
              "--gpus-per-node=0", "bash", "slurm/train_2gpu.sh", "--run-name", "interactive"]
    logs = []
    for attempt, pause in enumerate((PAUSE_STEP, last_step)):
        log_path = os.path.join(tmp, f"interactive-{attempt}.out")
        with open(log_path, "w") as log_file:
            allocation = subprocess.Popen(salloc + ["--pause-at-step", str(pause)], cwd=REPO,
                                          env=job_env, stdout=log_file,
                                          stderr=subprocess.STDOUT)
        try:
            if not wait_for(lambda: f"waiting at step {pause}" in read(log_path), 120,
                            f"the interactive run to pause at step {pause}"):
                check(False, f"interactive run {attempt}:\n{read(log_path)[-1500:]}")
                return 1
            granted = re.search(r"Granted job allocation (\d+)", read(log_path))
            job = granted.group(1) if granted else ""
            signalled = subprocess.run(["scancel", "--signal=USR1", job], env=env,
                                       capture_output=True, text=True, timeout=30)
            check(signalled.returncode == 0, f"scancel --signal=USR1 {job!r}: exit "
                  f"{signalled.returncode} {signalled.stderr.strip()}")
            try:
                code = allocation.wait(timeout=120)
            except subprocess.TimeoutExpired:
                code = None
        finally:
            if allocation.poll() is None:
                allocation.kill()
        logs.append(read(log_path))
        expected = 7 if attempt == 0 else 0
        check(code == expected, f"interactive run {attempt} (SIGUSR1 at step {pause}): exit "
              f"{code}, expected {expected}\n{logs[-1][-1500:]}")
    check("not requeued: it is an interactive allocation" in logs[0]
          and "could not requeue" not in logs[0],
          "interactive allocation: checkpointed, and no requeue tried")
    check("resumed from" in logs[1], "run again, the interactive run resumed its checkpoint")
    run = os.path.join(tmp, "out", "interactive")
    differ = differences(reference, snapshot(run)) if os.path.isdir(run) else ["no run"]
    check(not differ, f"the interactive run, stopped and finished, == job 1, bitwise ({differ[:5]})")
    return 1 if failures else 0


with tempfile.TemporaryDirectory(prefix="dptrain-slurm-") as scratch:
    code = main(scratch)
finish()
sys.exit(code)
