#!/usr/bin/env bash
# Sets up (Debian packages), builds and runs the whole test suite. README and .ci/run call this.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
# Paths relative to the checkout, so a fresh clone reuses the compiler cache of earlier builds.
export CCACHE_BASEDIR="$PWD"
cmake --preset release >/dev/null
cmake --build --preset release -j"$(nproc)"
bash tools/interop/install.sh   # js-libp2p peer for tests/interop (npm ci when its lockfile changed)
ctest --preset release -j"$(nproc)" "$@"
