"""Writing the report's files so that a killed or failing report never leaves a half-written
one: each is written to "<path>.tmp" and renamed over the earlier file, which stays whole until
then and whose permissions the new one keeps."""
import os
import shutil

from .load import EXIT_OUTPUT, ReportError


def replace_output(path, write):
    """Calls write(tmp) for tmp = path + ".tmp", then moves tmp over path. Any failure removes
    tmp; an OSError (writing or renaming) becomes a ReportError naming path (EXIT_OUTPUT)."""
    tmp = path + ".tmp"
    try:
        write(tmp)
        if os.path.exists(path):
            shutil.copymode(path, tmp)
        os.replace(tmp, path)
    except BaseException as e:
        try:
            os.remove(tmp)
        except OSError:
            pass
        if isinstance(e, OSError):
            raise ReportError(path, f"cannot write: {e.strerror or e}", EXIT_OUTPUT) from e
        raise
    return path
