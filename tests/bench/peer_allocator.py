"""The PyTorch peers run with tcmalloc, as PyTorch's CPU performance tuning guide recommends.

glibc's malloc hands every block above 32 MiB (a batch's activations) straight to mmap and back,
so each training step of a peer page-faults its activations in afresh: on the 2-core VM a third
of the airbench94 peer's CPU time was the kernel zeroing pages, and tcmalloc made its steps 2.6x
and ResNet-50's 1.3-1.6x faster. A benchmark against a slowed peer would flatter dptrain.

use_tcmalloc() re-executes the calling script once with Debian's tcmalloc (libtcmalloc-minimal4)
preloaded; DPTRAIN_PEER_ALLOCATOR=glibc keeps glibc's malloc (to measure the difference).
"""
import ctypes.util
import os
import sys

_LIBRARY = "tcmalloc_minimal"
_REEXECUTED = "DPTRAIN_PEER_REEXECUTED"  # set once, so a library that fails to load cannot loop


def preloaded():
    """The allocator this process runs with, read from its own mappings: 'tcmalloc' or
    'glibc malloc'."""
    with open("/proc/self/maps") as maps:
        return "tcmalloc" if "libtcmalloc" in maps.read() else "glibc malloc"


def use_tcmalloc():
    """Re-executes the process with tcmalloc preloaded unless it already is, glibc was asked
    for, or the library is not installed (the peers' first output line names the allocator).
    Returns the allocator the process runs with."""
    library = ctypes.util.find_library(_LIBRARY)
    if (library is None or preloaded() == "tcmalloc" or _REEXECUTED in os.environ
            or os.environ.get("DPTRAIN_PEER_ALLOCATOR") == "glibc"):
        return preloaded()
    preload = " ".join(filter(None, [os.environ.get("LD_PRELOAD"), library]))
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable] + sys.orig_argv[1:],
              dict(os.environ, LD_PRELOAD=preload, **{_REEXECUTED: "1"}))
