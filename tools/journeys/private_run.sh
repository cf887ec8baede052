#!/usr/bin/env bash
# Journey 1 (docs/private-run.md): a private run across three home machines.
#
#   pub    on the internet segment (198.51.100.10): `noloco init-run --private`, then `noloco join`
#   home1  behind its own NAT router (10.1.0.2 -> 198.51.100.1): `noloco join INVITE`
#   home2  behind another NAT router (10.2.0.2 -> 198.51.100.2): `noloco join INVITE`
#
# Only the invite string travels from pub to the others. home1 and home2 cannot dial each other
# (nor can pub dial them); they find that out themselves (--reachability auto), reserve a slot on
# pub (circuit relay v2) and advertise a /p2p-circuit address, through which they exchange with
# each other, until a hole punch (DCUtR) upgrades their connection to a direct one; the script
# prints which path they used. Each machine's commands are the ones docs/private-run.md gives, run here under
# `ip netns exec NS` with HOME set to the machine's own directory.
#
# Usage (root): tools/journeys/private_run.sh [path/to/noloco]   env: STEPS (default 160), H (20)
source "$(dirname "$0")/lib.sh"
j_need_root
NOLOCO=$(realpath "${1:-${NOLOCO:-build/release/cli/noloco}}")
STEPS=${STEPS:-160}
H=${H:-20}
TUNE=(--json --threads 1 --linger 15 --exchange-tries 2)
j_start private_run

j_internet
j_public_host 10 pub; PUB=$REPLY
j_nat_host 1 home1; H1=$REPLY
j_nat_host 2 home2; H2=$REPLY

# The NATs are real: a listener on home2 is reachable from its own router, not from home1 or pub.
ip netns exec "$H2" python3 -c 'import socket,time; s=socket.socket(); s.bind(("0.0.0.0",4999)); s.listen(); open("'"$J_DIR"'/listening","w"); time.sleep(60)' &
LISTENER=$!; J_PIDS+=($LISTENER)
for ((i = 0; i < 60; i++)); do [[ -e "$J_DIR/listening" ]] && break; sleep 0.5; done
j_check "home2's listener answers on its own LAN" j_tcp_open "$J_ROUTER" 10.2.0.2 4999
j_check "home1 cannot reach home2 directly (NAT)" bash -c "! ip netns exec $H1 timeout 3 bash -c 'exec 3<>/dev/tcp/10.2.0.2/4999' 2>/dev/null"
j_check "pub cannot reach home2 directly (NAT)" bash -c "! ip netns exec $PUB timeout 3 bash -c 'exec 3<>/dev/tcp/10.2.0.2/4999' 2>/dev/null"

kill "$LISTENER" 2>/dev/null

# 1. pub starts the run and gets the invite.
ip netns exec "$PUB" env HOME="$J_DIR/pub" "$NOLOCO" init-run --private --preset tiny --steps "$STEPS" --H "$H" \
  >"$J_DIR/init-run.txt" 2>&1
INVITE=$(grep -oE "noloco1:[A-Za-z0-9_-]+" "$J_DIR/init-run.txt" | head -1)
j_check "init-run --private printed an invite" test -n "$INVITE"
[[ -n "$INVITE" ]] || { cat "$J_DIR/init-run.txt"; j_finish; }

# 2. Every machine: noloco join INVITE (pub first: it holds the manifest).
j_noloco_bg "$PUB" pub join "$INVITE" "${TUNE[@]}"; P0=$REPLY
j_wait_for "$J_DIR/pub.events" '"event":"start"' 60 || j_fail "pub started"
j_noloco_bg "$H1" home1 join "$INVITE" "${TUNE[@]}"; P1=$REPLY
j_noloco_bg "$H2" home2 join "$INVITE" "${TUNE[@]}"; P2=$REPLY

j_wait_all 200 "$P0" "$P1" "$P2" || j_fail "every node finished within $(j_scaled 200) s (the rest were stopped)"

# 3. What each machine concluded and did, from its own --json events.
for m in pub home1 home2; do
  j_check "$m finished its run" grep -q '"event":"done"' "$J_DIR/$m.events"
done
j_check "pub judged itself public" grep -q '"reachability":"public"' "$J_DIR/pub.events"
# ... and on AutoNAT's evidence: a peer dialled its listen address back (or could not).
# A dial-back verdict may not come before a short run ends (a NATed machine's answer waits for the
# server's dial to time out, ~10-25 s): the check is that no dial-back verdict contradicts.
j_dialback() {  # j_dialback MACHINE: prints the dial-back verdicts it logged
  local v; v=$(grep -oE '"basis":"dialback".*"reachability":"[a-z]+"' "$J_DIR/$1.events" | grep -oE '(public|private|unknown)"$' | tr -d '"' | sort -u | tr '\n' ' ')
  echo "$1: dial-back verdicts: ${v:-none before the run ended}"
}
j_dialback pub
j_check "pub was never judged private by dial-back" bash -c "! grep -qE '\"basis\":\"dialback\".*\"reachability\":\"private\"' '$J_DIR/pub.events'"
for m in home1 home2; do
  j_check "$m judged itself private (behind NAT)" grep -q '"reachability":"private"' "$J_DIR/$m.events"
  j_dialback "$m"
  j_check "$m was never judged public by dial-back" bash -c "! grep -qE '\"basis\":\"dialback\".*\"reachability\":\"public\"' '$J_DIR/$m.events'"
  j_check "$m reserved a relay slot on pub" grep -q '"status":"reserved"' "$J_DIR/$m.events"
done
ID1=$(j_event_field "$J_DIR/home1.events" start peer)
ID2=$(j_event_field "$J_DIR/home2.events" start peer)
for m in pub home1 home2; do
  n=$(grep -c '"event":"outer".*"group":\["' "$J_DIR/$m.events")
  j_check "$m mixed with a peer at $n outer steps" test "$n" -gt 0
done
# The two NATed machines with each other. Each first reaches the other through pub's relay; the
# relayed connection's listener then starts a hole punch (DCUtR), and the routers' MASQUERADE keeps
# source ports, so both NATs let the punched connection through. Each node's `peer_path` events say
# how it reached the other (the last one counts); the `outer` events' `relayed` field says which
# exchanges still went through pub.
pair_path() {  # pair_path EVENTS OTHER_ID -> "<last peer_path> <exchanges relayed> <exchanges direct>"
  python3 - "$1" "$2" <<'PY'
import json, sys
path, other = sys.argv[1:3]
last, relayed, direct = "none", 0, 0
for line in open(path):
    try: e = json.loads(line)
    except ValueError: continue
    if e.get("event") == "peer_path" and e.get("peer") == other:
        last = e.get("path", "none")
    if e.get("event") == "outer" and other in e.get("group", []):
        if other in e.get("relayed", []): relayed += 1
        else: direct += 1
print(last, relayed, direct)
PY
}
read -r path12 relayed12 direct12 <<<"$(pair_path "$J_DIR/home1.events" "$ID2")"
read -r path21 relayed21 direct21 <<<"$(pair_path "$J_DIR/home2.events" "$ID1")"
echo "home1 -> home2: $path12 ($relayed12 exchanges relayed, $direct12 direct); home2 -> home1: $path21 ($relayed21 relayed, $direct21 direct)"
if [[ $path12 == hole_punched || $path21 == hole_punched ]]; then
  echo "home1 <-> home2: hole-punched (relayed through pub first, then a direct connection through both NATs)"
else
  echo "home1 <-> home2: relayed through pub (no hole punch succeeded)"
fi
j_check "home1 and home2 exchanged with each other" test $((relayed12 + direct12 + relayed21 + direct21)) -gt 0
j_check "home1 <-> home2 upgraded to a direct connection by a hole punch (port-preserving NAT)" \
  test "$path12" = hole_punched -o "$path21" = hole_punched
if ((J_FAILS > 0)); then
  for m in pub home1 home2; do echo "--- $m.log (tail)"; tail -n 15 "$J_DIR/$m.log"; done
fi
j_finish
