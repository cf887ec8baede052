#!/usr/bin/env bash
# The main job: sets up (Debian packages), builds `noloco`, and runs `noloco demo`: a local swarm
# of separate node processes on loopback (default 4) that train a tiny byte-level GPT on the
# fortunes corpus with NoLoCo over the encrypted overlay, then prints a summary and writes
# noloco-demo/loss_curves.png and noloco-demo/summary.json (docs/node.md).
# Extra arguments go to `noloco demo` (e.g. --peers 6 --steps 900 --slowdown-last 4).
# The in-process method comparison (SYNC, DiLoCo, NoLoCo, NO-SYNC) is tools/experiment.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
export CCACHE_BASEDIR="$PWD" CCACHE_NOHASHDIR=1
cmake --preset release >/dev/null
cmake --build --preset release -j"$(nproc)" --target noloco
# OpenMP threads that spin while waiting make a shared 2-core machine crawl (docs/benchmarks.md).
export OMP_WAIT_POLICY=PASSIVE
exec build/release/cli/noloco demo "$@"
