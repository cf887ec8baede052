#!/usr/bin/env bash
# Chaos check: a node's store runs out of space during checkpoints (docs/checkpoints.md,
# "Disk faults"). Puts the store of a one-node `noloco run` on a small tmpfs, fills the tmpfs
# while the node trains, and checks that
#   1. checkpoints fail with `checkpoint_failed` events while training goes on (outer steps
#      keep coming),
#   2. the store stays readable and its last good checkpoint verifies (`noloco status`, and
#      `noloco export`, which loads it and checks every blob's checksum),
#   3. once the space is freed the next checkpoint lands, and the node finishes cleanly,
#   4. a read-write open of the store on the full disk is refused with a clear error, exit 1.
# Needs root (mount). Cleans up its mount and temp dir on any exit. Not part of ctest.
#
#   sudo tools/chaos/enospc.sh [path/to/noloco]      (default: build/release/cli/noloco)
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=$(realpath "${1:-build/release/cli/noloco}")
SIZE_MB=${SIZE_MB:-40}  # room for a few tiny-model checkpoints (2.4 MB each) and the 16 MiB open floor
WORK=$(mktemp -d /tmp/noloco-enospc-XXXXXX)
MNT=$WORK/mnt
NODE_PID=
cleanup() {
  if [[ -n "$NODE_PID" ]] && kill -0 "$NODE_PID" 2>/dev/null; then kill -TERM "$NODE_PID"; wait "$NODE_PID" || true; fi
  mountpoint -q "$MNT" && umount "$MNT"
  rm -rf "$WORK"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; echo "--- node log (tail) ---" >&2; tail -20 "$WORK/node.log" >&2 || true; exit 1; }
count() { grep -c "\"event\":\"$1\"" "$WORK/events.jsonl" || true; }
# wait_until SECONDS CMD...: polls CMD every 0.2 s (a hang guard, not a measurement).
wait_until() {
  local limit=$1; shift
  for ((i = 0; i < limit * 5; i++)); do "$@" && return 0; sleep 0.2; done
  return 1
}
at_least() { (( $(count "$1") >= $2 )); }

mkdir -p "$MNT"
mount -t tmpfs -o "size=${SIZE_MB}m" tmpfs "$MNT"
"$BIN" init-run --out "$WORK/manifest.json" --steps 100000 --H 10 --batch 4 --preset tiny >/dev/null
"$BIN" run --db "$MNT/db" --key "$WORK/key" --manifest "$WORK/manifest.json" --json --threads 1 \
  --checkpoint-every 1 --keep-last 2 --min-peers 0 --join-wait 0 --linger 0 --slowdown 2 \
  >"$WORK/events.jsonl" 2>"$WORK/node.log" &
NODE_PID=$!

wait_until 120 at_least checkpoint 2 || fail "no checkpoint before the disk was filled"
echo "node is checkpointing: $(count checkpoint) checkpoint(s); filling $MNT"
dd if=/dev/zero of="$MNT/fill" bs=64k 2>/dev/null || true  # stops at ENOSPC
df -k "$MNT" | tail -1

wait_until 120 at_least checkpoint_failed 2 || fail "no checkpoint_failed event on a full disk"
outer_at_fail=$(count outer)
wait_until 120 at_least outer $((outer_at_fail + 3)) || fail "training stopped on the full disk"
kill -0 "$NODE_PID" || fail "the node exited on the full disk"
echo "disk full: $(count checkpoint_failed) checkpoint(s) failed, training went on ($(count outer) outer steps)"
grep -m1 '"event":"checkpoint_failed"' "$WORK/events.jsonl"
grep -m1 'FAILED, training goes on' "$WORK/node.log" | cut -c1-300

# The store is readable while full and its last good checkpoint verifies.
"$BIN" status --db "$MNT/db" || fail "noloco status cannot read the store on the full disk"
"$BIN" export --db "$MNT/db" --out "$WORK/during.safetensors" || fail "the last good checkpoint does not load"

# Space back: the next checkpoint lands.
rm -f "$MNT/fill"
ok_before=$(count checkpoint)
wait_until 120 at_least checkpoint $((ok_before + 1)) || fail "no checkpoint after space came back"
echo "space back: checkpoint landed: $(grep '"event":"checkpoint"' "$WORK/events.jsonl" | tail -1)"

kill -TERM "$NODE_PID"
rc=0
wait "$NODE_PID" || rc=$?
NODE_PID=
(( rc == 0 || rc == 130 )) || fail "node exited with $rc after SIGTERM"
"$BIN" status --db "$MNT/db" || fail "noloco status after the run"
"$BIN" export --db "$MNT/db" --out "$WORK/after.safetensors" || fail "the final checkpoint does not load"

# A full disk at start: a clear error and exit code 1, no crash.
dd if=/dev/zero of="$MNT/fill" bs=64k 2>/dev/null || true
rc=0
"$BIN" run --db "$MNT/db" --key "$WORK/key" --json --threads 1 --min-peers 0 --join-wait 0 \
  >/dev/null 2>"$WORK/open.log" || rc=$?
grep -q "disk full" "$WORK/open.log" || fail "no disk-full message at open: $(cat "$WORK/open.log")"
(( rc == 1 )) || fail "open on a full disk exited with $rc, expected 1"
echo "full disk at open: exit $rc: $(grep -m1 'disk full' "$WORK/open.log" | cut -c1-200)"
echo "PASS"
