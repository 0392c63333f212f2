#!/usr/bin/env bash
# One SHA-256 over the C++/CUDA sources and CMake files that the device kit's binaries are built
# from (lib, app, tests, and cmake/'s modules, which choose the GPU architectures), in a fixed
# order: make_device_kit.sh stores it in the kit and run_on_device.sh compares it with the
# tree it runs in, so stale binaries never pass as new.
# Needs no git (a device machine's copy of the tree has none). From the repository root.
set -euo pipefail
cd "$(dirname "$0")/../.."
find CMakeLists.txt cmake lib app tests -type f \
  \( -name '*.cpp' -o -name '*.h' -o -name '*.cu' -o -name '*.cuh' -o -name 'CMakeLists.txt' \
     -o -name '*.cmake' \) \
  -not -path 'tests/bench/results/*' -print0 | LC_ALL=C sort -z | xargs -0 sha256sum |
  sha256sum | cut -d' ' -f1
