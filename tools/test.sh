#!/usr/bin/env bash
# Sets up (Debian packages), builds and runs the whole test suite. README and .ci/run call this.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
# Paths relative to the checkout (and the build directory left out of the hash, although -g
# records it), so a fresh clone reuses the compiler cache of earlier builds.
export CCACHE_BASEDIR="$PWD" CCACHE_NOHASHDIR=1
cmake --preset release >/dev/null
cmake --build --preset release -j"$(nproc)"
bash tools/interop/install.sh   # js-libp2p peer for tests/interop (npm ci when its lockfile changed)
# Torch tests run two at a time on 2 cores: OpenMP threads that spin while waiting would
# starve each other (docs/benchmarks.md), so they sleep instead; OpenBLAS's idle workers too.
export OMP_WAIT_POLICY=PASSIVE OPENBLAS_THREAD_TIMEOUT=4
ctest --preset release -j"$(nproc)" "$@"
