#!/usr/bin/env bash
# Sets up a fresh Debian 12 machine (as root) and builds dptrain into build/:
# installs what is missing with apt-get, configures with CMake and builds everything.
# Idempotent: a second run only rebuilds what changed.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(build-essential cmake pkg-config git
  libopenmpi-dev openmpi-bin libhdf5-dev hdf5-tools libboost-program-options-dev libfmt-dev
  libssl-dev libjpeg62-turbo-dev libpng-dev python3-pil  # pack --format folder; its tests use Pillow
  liblapacke-dev  # LAPACKE: the whitening initialisation's eigendecomposition
  libopenblas0-openmp  # BLAS/LAPACK behind libblas.so.3 (LAPACKE's too): the torch oracles'
                       # float64 convolutions 10x faster than on the reference BLAS
  libdnnl-dev ocl-icd-opencl-dev libgtest-dev zlib1g-dev  # dnnl's CMake config needs OpenCL's headers
  python3-h5py python3-matplotlib python3-numpy python3-torch python3-torchvision
  libtcmalloc-minimal4  # the PyTorch peers run on tcmalloc (tests/bench/peer_allocator.py)
  dataset-fashion-mnist
  gdb  # reliability_eval_stall holds one rank of `eval` with it
  slurm-wlm munge)  # the Slurm test starts its own one-node cluster (tests/slurm)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  if [ "$(id -u)" -ne 0 ]; then echo "setup: run as root to install packages" >&2; exit 2; fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DDPTRAIN_WERROR=ON >/dev/null
cmake --build build -j"$(nproc)"
echo "setup: built build/app/dptrain"
