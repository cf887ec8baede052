#!/usr/bin/env bash
# Journey 2 (docs/public-run.md): a public run of four machines; a fifth joins late with
# `noloco join INVITE` and starts from the swarm's current weights (state sync), not from scratch.
#
#   m1..m4, late  on the internet segment (198.51.100.11..15), each its own namespace and HOME
#
# Every machine runs the commands docs/public-run.md gives, here under `ip netns exec NS`.
# Usage (root): tools/journeys/public_run.sh [path/to/noloco]   env: STEPS (default 600), H (20)
source "$(dirname "$0")/lib.sh"
j_need_root
NOLOCO=$(realpath "${1:-${NOLOCO:-build/release/cli/noloco}}")
STEPS=${STEPS:-600}
H=${H:-20}
TUNE=(--json --threads 1 --linger 10)
j_start public_run

j_internet
for i in 1 2 3 4 5; do j_public_host $((10 + i)) "m$i"; NS[$i]=$REPLY; done

# 1. m1 starts the run (public: no network key) and prints the invite.
ip netns exec "${NS[1]}" env HOME="$J_DIR/m1" "$NOLOCO" init-run --preset tiny --steps "$STEPS" --H "$H" \
  >"$J_DIR/init-run.txt" 2>&1
INVITE=$(grep -oE "noloco1:[A-Za-z0-9_-]+" "$J_DIR/init-run.txt" | head -1)
j_check "init-run printed an invite" test -n "$INVITE"
[[ -n "$INVITE" ]] || { cat "$J_DIR/init-run.txt"; j_finish; }

# 2. Four machines join.
j_noloco_bg "${NS[1]}" m1 join "$INVITE" "${TUNE[@]}"; PIDS=($REPLY)
j_wait_for "$J_DIR/m1.events" '"event":"start"' 60 || j_fail "m1 started"
for i in 2 3 4; do j_noloco_bg "${NS[$i]}" "m$i" join "$INVITE" "${TUNE[@]}"; PIDS+=($REPLY); done

# 3. Once the swarm is a few outer steps in, the newcomer joins with the same invite. The run is
#    30 outer steps long so the newcomer, which takes seconds to start on a loaded machine, still
#    finds it running (with 200 steps CI saw the swarm finish before the newcomer had started).
j_wait_for "$J_DIR/m2.events" "\"event\":\"outer\".*\"outer_step\":([4-9]|[1-9][0-9])," 150 ||
  j_fail "the swarm reached outer step 4"
j_noloco_bg "${NS[5]}" late join "$INVITE" "${TUNE[@]}"; PIDS+=($REPLY)

j_wait_all 240 "${PIDS[@]}" || j_fail "every node finished within $(j_scaled 240) s (the rest were stopped)"

for m in m1 m2 m3 m4 late; do
  j_check "$m finished its run" grep -q '"event":"done"' "$J_DIR/$m.events"
  n=$(grep -c '"event":"outer".*"group":\["' "$J_DIR/$m.events")
  j_check "$m mixed with a peer at $n outer steps" test "$n" -gt 0
done
start_step=$(j_event_field "$J_DIR/late.events" start inner_step)
synced_step=$(j_event_field "$J_DIR/late.events" state_sync outer_step)
first_outer=$(j_event_field "$J_DIR/late.events" outer outer_step)
echo "late: started at inner step ${start_step:-?}, state-synced to outer step ${synced_step:-none}, first own outer step ${first_outer:-?}"
j_check "the newcomer started fresh (inner step 0, nothing to resume)" test "${start_step:-x}" = 0
j_check "the newcomer took the swarm's weights by state sync" test -n "$synced_step" -a "${synced_step:-0}" -gt 0
j_check "its first outer step continues from the swarm's, not from 1" test "${first_outer:-0}" -gt 1
before=$(j_event_field "$J_DIR/late.events" state_sync val_loss_before)
after=$(j_event_field "$J_DIR/late.events" state_sync val_loss_after)
echo "late: validation loss ${before:-?} with its initial weights, ${after:-?} with the synced ones"
j_check "the synced weights are the trained ones (lower validation loss than its initial weights)" \
  python3 -c "import sys; sys.exit(0 if float('${after:-9}') < float('${before:-0}') else 1)"
if ((J_FAILS > 0)); then
  for m in m1 late; do echo "--- $m.log (tail)"; tail -n 15 "$J_DIR/$m.log"; done
fi
j_finish
