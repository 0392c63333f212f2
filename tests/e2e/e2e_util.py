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


def pack_fashion_mnist(dptrain, directory):
    """Packs Fashion-MNIST into directory/fashion-mnist.h5 with `dptrain pack`; returns the path."""
    packed = os.path.join(directory, "fashion-mnist.h5")
    subprocess.run([dptrain, "pack", "--format", "fashion-mnist", "--source", FASHION,
                    "--output", packed], check=True)
    return packed
