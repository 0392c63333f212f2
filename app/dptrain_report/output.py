"""Writing the report's files so that a killed or failing report never leaves a half-written
one: each is written to "<path>.tmp", created exclusively (as dptrain's own outputs are), and
renamed over the earlier file, which stays whole until then and whose permissions the new one
keeps. A link at the output's name is replaced by the file, as a rename does."""
import os
import shutil

from .load import EXIT_OUTPUT, ReportError


def _tmp_exists(tmp):
    return ReportError(tmp, "exists: another report is writing this output, or one that was "
                       "killed left it (remove it if none is running)", EXIT_OUTPUT)


def refuse_leftover_tmp(paths):
    """Refuses, before the first file is written, outputs whose "<path>.tmp" is there: one
    refused midway would leave some files of this report beside others of an earlier one."""
    for path in paths:
        if os.path.lexists(path + ".tmp"):
            raise _tmp_exists(path + ".tmp")


def _create_exclusively(tmp):
    """The empty file tmp, open for writing in binary; an existing file or link there (another
    report writing this output, or one that was killed) is refused and left as it was."""
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                     0o666)
    except FileExistsError:
        raise _tmp_exists(tmp) from None
    except OSError as e:
        raise ReportError(tmp, f"cannot create: {e.strerror or e}", EXIT_OUTPUT) from None
    return os.fdopen(fd, "wb")


def replace_output(path, write):
    """Calls write(f) on the binary file f open at path + ".tmp", then moves it over path. Any
    failure (an exception, or SIGTERM/SIGHUP, which main turns into SystemExit) removes the
    tmp; an OSError becomes a ReportError naming the file it concerned (EXIT_OUTPUT)."""
    tmp = path + ".tmp"
    f = _create_exclusively(tmp)
    try:
        with f:
            write(f)
        if os.path.exists(path):
            shutil.copymode(path, tmp)
        os.replace(tmp, path)
    except BaseException as e:
        try:
            os.remove(tmp)
        except OSError:
            pass
        if isinstance(e, OSError):
            raise ReportError(e.filename or path, f"cannot write: {e.strerror or e}",
                              EXIT_OUTPUT) from e
        raise
    return path
