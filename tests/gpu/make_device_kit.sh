#!/usr/bin/env bash
# Packs what a GPU machine without Debian's packages needs to run tests/gpu/run_on_device.sh:
# the GPU test executables and dptrain from BUILD_DIR, every shared library they (and OpenMPI's
# mpirun, orted and components) load except the C/C++ runtime and the CUDA libraries (the GPU
# machine brings its driver, and cuBLAS, cuDNN 9 and NCCL in PyTorch's pip wheels or its
# toolkit), OpenMPI's components and help files, in one xz tarball, .devkit/kit.tar.xz
# (git-ignored); beside it the datasets, already compressed: Debian's Fashion-MNIST files in
# .devkit/fashion-mnist (run_on_device.sh's checks) and the CIFAR-10 copy of CIFAR_DIR in
# .devkit/cifar, when there is one (its airbench part). A device call carries the tarball and
# the one dataset its part reads: all three together are over the 64 MiB a call takes.
#
#   tests/gpu/make_device_kit.sh [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${1:-build}
OMPI_COMPONENTS=/usr/lib/x86_64-linux-gnu/openmpi/lib/openmpi3
FASHION=/usr/share/datasets/fashion-mnist
CIFAR_DIR=${CIFAR_DIR:-../shared/datasets}
targets=(dptrain test_cuda_backend test_cuda_vs_cpu dp_train_cuda_tests dp_comm_nccl_tests
         dp_comm_equivalence_cuda_tests dp_comm_sync_bn_cuda_tests)
binaries=("$BUILD/app/dptrain"
          "$BUILD/tests/backend/test_cuda_backend"
          "$BUILD/tests/backend/test_cuda_vs_cpu"
          "$BUILD/tests/train/dp_train_cuda_tests"
          "$BUILD/tests/comm/dp_comm_nccl_tests"
          "$BUILD/tests/comm/dp_comm_equivalence_cuda_tests"
          "$BUILD/tests/comm/dp_comm_sync_bn_cuda_tests")
# Built from this tree now, so the kit never carries binaries of older sources.
cmake --build "$BUILD" -j"$(nproc)" --target "${targets[@]}" > /dev/null ||
  { echo "make_device_kit: building ${targets[*]} in $BUILD failed" >&2; exit 2; }
for b in "${binaries[@]}"; do
  [ -x "$b" ] || { echo "make_device_kit: $b is missing (a CUDA build is needed)" >&2; exit 2; }
done

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/bin" "$stage/lib" "$stage/openmpi"
cp "${binaries[@]}" /usr/bin/orterun /usr/bin/orted "$stage/bin/"
cp -r "$OMPI_COMPONENTS" "$stage/openmpi/components"
cp -r /usr/share/openmpi "$stage/openmpi/share"
# PMIx's own components: without them every process prints a "help file not found" block.
cp -r /usr/lib/x86_64-linux-gnu/pmix2/lib/pmix "$stage/openmpi/pmix"
tests/gpu/source_digest.sh > "$stage/SOURCE_DIGEST"  # run_on_device.sh checks the tree against it
# The commit, marked -dirty where the tree has changes beside it (SOURCE_DIGEST holds them).
{ git rev-parse --short HEAD 2>/dev/null || echo unknown; } | tr -d '\n' > "$stage/COMMIT"
git diff --quiet HEAD 2>/dev/null || echo -n -dirty >> "$stage/COMMIT"
echo >> "$stage/COMMIT"

# The libraries, resolved here; glibc, libstdc++/libgcc and anything CUDA stay behind.
skip='/(libc|libm|libdl|libpthread|librt|libresolv|libstdc\+\+|libgcc_s|libcuda|ld-linux-x86-64)\.so'
missing=$(for f in "${binaries[@]}" /usr/bin/orterun /usr/bin/orted "$OMPI_COMPONENTS"/*.so; do
  ldd "$f" 2>/dev/null | { grep 'not found' || true; } | sed "s|^|$f: |"
done)
[ -z "$missing" ] || { echo "make_device_kit: unresolved libraries: $missing" >&2; exit 2; }
for f in "${binaries[@]}" /usr/bin/orterun /usr/bin/orted "$OMPI_COMPONENTS"/*.so; do
  ldd "$f" 2>/dev/null | awk '/=> \// { print $3 }'
done | sort -u | grep -Ev "$skip" | grep -v '^/usr/local/cuda' | while read -r lib; do
  cp -L "$lib" "$stage/lib/"
done
# LAPACKE's one use, a 12x12 eigendecomposition, needs no tuned BLAS: Debian's reference
# LAPACK and BLAS (where installed) stand in for OpenBLAS (36 MB, 4 MB of the xz kit), which
# leaves a call carrying the Fashion-MNIST files more room under its 64 MiB.
ref=/usr/lib/x86_64-linux-gnu
if [ -e "$ref/lapack/liblapack.so.3" ] && [ -e "$ref/blas/libblas.so.3" ]; then
  cp -L "$ref/lapack/liblapack.so.3" "$ref/blas/libblas.so.3" "$stage/lib/"
  rm -f "$stage"/lib/libopenblas*.so*
fi
# With the kit first on the path, nothing is missing and no OpenBLAS is loaded from outside it.
unresolved=$(for f in "${binaries[@]}"; do
  LD_LIBRARY_PATH=$stage/lib ldd "$f" | { grep -E 'not found|openblas' || true; } |
    { grep -v "=> $stage/" || true; } | sed "s|^|$f: |"
done)
[ -z "$unresolved" ] || { echo "make_device_kit: from the kit: $unresolved" >&2; exit 2; }

mkdir -p .devkit
tar -C "$stage" -cf - . | xz -6 > .devkit/kit.tar.xz
rm -rf .devkit/fashion-mnist .devkit/cifar
mkdir -p .devkit/fashion-mnist
cp "$FASHION"/*.gz .devkit/fashion-mnist/
# The CIFAR-10 copy of development machines (../shared/datasets, never committed) as it is:
# the JPEG tarball (19 MB) and its decoder.
if [ -f "$CIFAR_DIR/cifar10-jpeg.tar.gz" ]; then
  mkdir -p .devkit/cifar
  cp "$CIFAR_DIR/cifar10-jpeg.tar.gz" "$CIFAR_DIR/make_cifar10_bin.py" .devkit/cifar/
fi
# What a device call carries: the tracked tree, the kit and one dataset, within 64 MiB.
tree=$(git ls-files -z | du -cb --files0-from=- 2>/dev/null | tail -1 | cut -f1)
kit=$(du -b .devkit/kit.tar.xz | cut -f1)
for data in fashion-mnist cifar; do
  [ -d ".devkit/$data" ] || continue
  carry=$((tree + kit + $(du -sb ".devkit/$data" | cut -f1)))
  echo "make_device_kit: a call carrying .devkit/$data: $((carry / 1048576)) MiB with the tree"
  [ "$carry" -le $((64 * 1048576)) ] ||
    { echo "make_device_kit: over the 64 MiB a device call carries" >&2; exit 2; }
done
echo "make_device_kit: .devkit/kit.tar.xz $(du -h .devkit/kit.tar.xz | cut -f1)" \
     "($(ls "$stage/lib" | wc -l) libraries, commit $(git rev-parse --short HEAD));" \
     "CIFAR-10 copy: $([ -d .devkit/cifar ] && echo "from $CIFAR_DIR" || echo "none in $CIFAR_DIR")"
