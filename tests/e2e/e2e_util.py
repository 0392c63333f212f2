"""What the end-to-end scripts share: the check line they print, and Fashion-MNIST packed from
Debian's dataset-fashion-mnist (FASHION_MNIST_DIR names another copy, the GPU machine's)."""
import os
import subprocess
import sys

FASHION = os.environ.get("FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist")


def check(cond, what):
    if not cond:
        print("FAIL:", what)
        sys.exit(1)
    print("ok:", what)


def run_dptrain(dptrain, *args, code=0):
    """Runs `dptrain ARGS`, checks its exit code (printing its output when it differs) and
    returns stdout + stderr."""
    proc = subprocess.run([dptrain, *args], capture_output=True, text=True, timeout=120)
    if proc.returncode != code:
        print(proc.stdout, proc.stderr)
    check(proc.returncode == code,
          f"dptrain {args[0]} {os.path.basename(str(args[-1]))}: exit {code}")
    return proc.stdout + proc.stderr


def pack_fashion_mnist(dptrain, directory):
    """Packs Fashion-MNIST into directory/fashion-mnist.h5 with `dptrain pack`; returns the path."""
    packed = os.path.join(directory, "fashion-mnist.h5")
    subprocess.run([dptrain, "pack", "--format", "fashion-mnist", "--source", FASHION,
                    "--output", packed], check=True)
    return packed
