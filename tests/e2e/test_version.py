"""`dptrain --version` and `-V`: exit 0 and the same text, naming the version, both backends
(CUDA as this build has it) and every library with a version; `--help` mentions them and
lists exit codes 0-7; an extra argument is a usage error.

usage: test_version.py DPTRAIN VERSION CUDA_BUILT(ON|OFF)"""
import re
import subprocess
import sys

from e2e_util import check

DPTRAIN, VERSION, CUDA_BUILT = sys.argv[1], sys.argv[2], sys.argv[3].upper() in ("ON", "1", "TRUE")
LIBRARIES = ["oneDNN", "HDF5", "MPI", "Boost", "fmt", "OpenSSL"]


def run(*args):
    return subprocess.run([DPTRAIN, *args], capture_output=True, text=True, timeout=60)


long_form, short_form = run("--version"), run("-V")
out = long_form.stdout
print(out, end="")
check(long_form.returncode == 0 and long_form.stderr == "", "--version exits 0, stderr empty")
check(short_form.returncode == 0 and short_form.stdout == out, "-V prints the same as --version")
check(out.splitlines()[0] == f"dptrain {VERSION}", f"first line is 'dptrain {VERSION}'")
check(re.search(r"^  CPU +yes \(oneDNN \d+\.\d+\.\d+\)$", out, re.M) is not None,
      "CPU backend with its oneDNN version")
if CUDA_BUILT:
    cuda = r"^  CUDA +yes \(built against CUDA runtime \d+\.\d+, cuDNN \d+\.\d+\.\d+, NCCL \d+\.\d+\.\d+\)$"
else:
    cuda = r"^  CUDA +no \("
check(re.search(cuda, out, re.M) is not None, f"CUDA backend {'yes' if CUDA_BUILT else 'no'}")
for library in LIBRARIES:
    line = re.search(rf"^  {library} +(\S.*)$", out, re.M)
    check(line is not None and re.search(r"\d+\.\d+", line.group(1)) is not None,
          f"{library} with a version number")

usage = run("--help")
check(usage.returncode == 0 and "--version" in usage.stdout and "-V" in usage.stdout,
      "--help mentions --version and -V")
# The exit codes the README's table documents, each on a line of its own after "exit codes:".
codes = re.findall(r"^  (\d+)  \S", usage.stdout.split("exit codes:\n", 1)[-1], re.M)
check(codes == [str(code) for code in range(8)], f"--help lists exit codes 0-7 (it lists {codes})")
extra = run("--version", "--verbose")
check(extra.returncode == 2 and extra.stderr.count("\n") == 1 and "--version" in extra.stderr,
      "an argument after --version is one usage error line (exit 2)")
