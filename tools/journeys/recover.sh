#!/usr/bin/env bash
# Journey 3 (docs/recover.md): things go wrong and the run carries on.
#
#   a  the run's first machine (its address is the invite's bootstrap), 198.51.100.21
#   b  198.51.100.22       c  198.51.100.23
#
# (1) c's network link is cut for CUT_S seconds (docs: 300, the 5 minutes of the journey; CI
#     runs it with CUT_S=20), and while it is cut the bootstrap machine a goes away for good. When
#     the link comes back, c finds b again through the peers it remembers (its peer book), not
#     the invite's dead bootstrap, and mixes with b again.
# (2) b's process is killed (its data directory stays); `noloco join` with no arguments brings it
#     back from its last checkpoint, and it finds c through its peer book.
# Usage (root): tools/journeys/recover.sh [path/to/noloco]   env: CUT_S (default 300), H (20)
source "$(dirname "$0")/lib.sh"
j_need_root
NOLOCO=$(realpath "${1:-${NOLOCO:-build/release/cli/noloco}}")
CUT_S=${CUT_S:-300}
H=${H:-20}
TUNE=(--json --threads 1 --checkpoint-every 2)
j_start recover
echo "link cut: ${CUT_S} s"

j_internet
j_public_host 21 a; A=$REPLY
j_public_host 22 b; B=$REPLY
j_public_host 23 c; C=$REPLY

# Outer-step events with a partner, after line $2 of events file $1.
mixed_after() { tail -n +"$(($2 + 1))" "$1" | grep -c '"event":"outer".*"group":\["'; }
lines() { wc -l <"$1"; }

# A run long enough to outlast the journey; the script stops the nodes itself.
ip netns exec "$A" env HOME="$J_DIR/a" "$NOLOCO" init-run --preset tiny --steps 1000000 --H "$H" \
  >"$J_DIR/init-run.txt" 2>&1
INVITE=$(grep -oE "noloco1:[A-Za-z0-9_-]+" "$J_DIR/init-run.txt" | head -1)
j_check "init-run printed an invite" test -n "$INVITE"
[[ -n "$INVITE" ]] || { cat "$J_DIR/init-run.txt"; j_finish; }

j_noloco_bg "$A" a join "$INVITE" "${TUNE[@]}"; PA=$REPLY
j_wait_for "$J_DIR/a.events" '"event":"start"' 60 || j_fail "a started"
j_noloco_bg "$B" b join "$INVITE" "${TUNE[@]}"; PB=$REPLY
j_noloco_bg "$C" c join "$INVITE" "${TUNE[@]}"; PC=$REPLY
j_wait_for "$J_DIR/c.events" '"event":"outer".*"group":\["' 90 || j_fail "c mixed before the cut"
j_wait_for "$J_DIR/b.events" '"event":"checkpoint"' 60 || j_fail "b wrote a checkpoint"

# --- (1) cut c's link, the bootstrap goes, the link comes back.
ip -n "$C" link set wan down
echo "c: link cut at $(date -u +%T)"
kill "$PA"; j_wait_exit "$PA" 30
j_check "the bootstrap machine a is gone" bash -c "! kill -0 $PA 2>/dev/null"
sleep "$CUT_S"
mark=$(lines "$J_DIR/c.events")
ip -n "$C" link set wan up
echo "c: link back at $(date -u +%T)"
ID_B=$(j_event_field "$J_DIR/b.events" start peer)
back_with_b() { tail -n +"$((mark + 1))" "$J_DIR/c.events" | grep '"event":"outer"' | grep -q "\"group\":\[[^]]*$ID_B"; }
for ((i = 0; i < 180; i++)); do back_with_b && break; sleep 0.5; done
j_check "c mixes with b again after the cut, with the bootstrap gone" back_with_b
j_check "c kept running through the cut" kill -0 "$PC"

# --- (2) b's process dies; its store stays; `noloco join` with no arguments resumes it.
ckpt_step=$(grep '"event":"checkpoint"' "$J_DIR/b.events" | tail -1 | python3 -c 'import json,sys; print(json.loads(sys.stdin.read())["outer_step"])')
{ kill -9 "$PB"; wait "$PB"; } 2>/dev/null
echo "b: killed (SIGKILL) after its checkpoint at outer step $ckpt_step"
markb=$(lines "$J_DIR/b.events")
j_noloco_bg "$B" b join "${TUNE[@]}"; PB=$REPLY
j_wait_for "$J_DIR/b.events" '"event":"start".*"resumed":true' 60
j_check "b came back with a bare 'noloco join' and resumed from its store" \
  bash -c "tail -n +$((markb + 1)) '$J_DIR/b.events' | grep -q '\"event\":\"start\".*\"resumed\":true'"
resumed_outer=$(tail -n +"$((markb + 1))" "$J_DIR/b.events" | grep '"event":"start"' | head -1 |
  python3 -c 'import json,sys; print(json.loads(sys.stdin.read())["outer_step"])' 2>/dev/null)
echo "b: resumed at outer step ${resumed_outer:-?} (last checkpoint seen: ${ckpt_step:-?})"
j_check "b resumed from its checkpoint, not from step 0" test "${resumed_outer:-0}" -ge "${ckpt_step:-1}" -a "${resumed_outer:-0}" -gt 0
ID_C=$(j_event_field "$J_DIR/c.events" start peer)
b_with_c() { tail -n +"$((markb + 1))" "$J_DIR/b.events" | grep '"event":"outer"' | grep -q "\"group\":\[[^]]*$ID_C"; }
for ((i = 0; i < 180; i++)); do b_with_c && break; sleep 0.5; done
j_check "b mixes with c again (found through its peer book: the invite's bootstrap is gone)" b_with_c

kill "$PB" "$PC" 2>/dev/null
j_wait_exit "$PB" 30; j_wait_exit "$PC" 30
for m in b c; do j_check "$m stopped cleanly with a checkpoint" grep -q '"event":"done"' "$J_DIR/$m.events"; done
if ((J_FAILS > 0)); then
  for m in b c; do echo "--- $m.log (tail)"; tail -n 15 "$J_DIR/$m.log"; done
fi
j_finish
