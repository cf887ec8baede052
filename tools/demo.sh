#!/usr/bin/env bash
# The main job: sets up (Debian packages), builds `noloco`, and runs the reference experiment
# (ALGORITHM.md §8): 8 replicas of a tiny byte-level GPT trained on the fortunes corpus with SYNC,
# DiLoCo, NoLoCo, NO-SYNC and the NoLoCo ablations, then prints the table and writes
# out/experiment/comparison.png. Progress of each run is in out/experiment/<run>.log.
# Until the multi-process node lands (issue 5) this in-process experiment is the demo.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
export CCACHE_BASEDIR="$PWD" CCACHE_NOHASHDIR=1
cmake --preset release >/dev/null
cmake --build --preset release -j"$(nproc)" --target noloco
# OpenMP threads that spin while waiting make a shared 2-core machine crawl (docs/benchmarks.md).
export OMP_WAIT_POLICY=PASSIVE
exec bash tools/experiment.sh --steps 300 --h 10 --batch 8 --lr 5e-3 --warmup 30 --eval-every 60 "$@"
