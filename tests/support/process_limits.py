"""Running a child process under a thread limit (RLIMIT_NPROC), for tests of options that ask
for more threads than the system lets start."""
import os
import resource


def tasks_of(uid):
    """Threads of every process of `uid` in sight: what RLIMIT_NPROC counts."""
    count = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if os.stat(f"/proc/{pid}").st_uid == uid:
                count += len(os.listdir(f"/proc/{pid}/task"))
        except OSError:
            pass  # ended meanwhile
    return count


def limited_uid():
    """The user id the child runs as. Root is exempt from the limit, so as root a user id of
    this test's own, which no process anywhere has; otherwise this user's, whose other
    processes may start or end meanwhile. Files the child reads or writes must be reachable by
    it (a checkout under /root is not: copy the binary)."""
    return 40000 + os.getpid() % 20000 if os.getuid() == 0 else os.getuid()


def under_process_limit(spare_tasks):
    """A preexec_fn: the child runs as limited_uid() with RLIMIT_NPROC `spare_tasks` above what
    that user runs now (as root: exactly `spare_tasks`)."""
    uid = limited_uid()
    limit = tasks_of(uid) + spare_tasks

    def start():
        if os.getuid() != uid:
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
        resource.setrlimit(resource.RLIMIT_NPROC, (limit, limit))
    return start
