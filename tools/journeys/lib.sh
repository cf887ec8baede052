# Shared by the journey scripts (tools/journeys/*.sh, docs/private-run.md, public-run.md,
# recover.md): network namespaces that stand for home machines, NAT routers and the internet,
# the `noloco` binary, PASS/FAIL lines and a cleanup that removes everything the script made.
#
# Topology pieces (all addresses stay inside the namespaces this script creates):
#   internet  one namespace with a bridge; "public" hosts and routers' WAN sides hang off it,
#             198.51.100.0/24 (TEST-NET-2). It has no default route, so nothing leaves.
#   public    a machine with an address on the internet segment (reachable by everyone).
#   NAT       a router namespace (WAN on the internet, LAN 10.N.0.1/24, MASQUERADE out of WAN)
#             and a home machine behind it at 10.N.0.2 whose only route is via the router.
# Needs root (ip netns, iptables). Sourced, not run.

set -uo pipefail

J_PREFIX="nlj$$"                 # unique per run: namespaces and veths carry it
J_NS=()                          # namespaces to delete
J_PIDS=()                        # node processes to stop
J_FAILS=0
J_DIR=""
# The hang guards below (j_wait_for, j_wait_all) are multiplied by this: sanitizer builds run the
# nodes several times slower and set 3 (tests/journeys/CMakeLists.txt). Never a pass condition.
J_WAIT_SCALE=${JOURNEY_WAIT_SCALE:-1}

j_scaled() {  # j_scaled SECONDS: SECONDS times JOURNEY_WAIT_SCALE
  echo $(($1 * J_WAIT_SCALE))
}

j_need_root() {
  if [[ $(id -u) -ne 0 ]]; then
    echo "SKIP: $(basename "$0") needs root (ip netns, iptables); run it as root (CI does)"
    exit 77
  fi
  for tool in ip iptables; do
    command -v "$tool" >/dev/null || { echo "FAIL: $tool not found (tools/setup.sh installs it)"; exit 1; }
  done
}

j_pass() { echo "PASS: $*"; }
j_fail() { echo "FAIL: $*"; J_FAILS=$((J_FAILS + 1)); }
j_check() {  # j_check "what" command...
  local what=$1; shift
  if "$@"; then j_pass "$what"; else j_fail "$what"; fi
}

j_cleanup() {
  local pid
  for pid in "${J_PIDS[@]}"; do kill "$pid" 2>/dev/null; done
  sleep 0.5
  for pid in "${J_PIDS[@]}"; do kill -9 "$pid" 2>/dev/null; done
  local ns
  for ns in "${J_NS[@]}"; do
    # Anything still running in it (a node started by hand from the docs' commands) goes too.
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null; done
    ip netns del "$ns" 2>/dev/null
  done
  if [[ -n "$J_DIR" && -z "${KEEP:-}" ]]; then rm -rf "$J_DIR"; fi
}

# Namespaces of an earlier journey run that was killed before its cleanup could run (ctest's
# timeout kills with SIGKILL, which no trap sees): nlj<PID>-* whose PID is gone. Removed with
# whatever still runs in them.
j_sweep_orphans() {
  local ns pid owner
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep -E '^nlj[0-9]+-' || true); do
    owner=${ns#nlj}; owner=${owner%%-*}
    kill -0 "$owner" 2>/dev/null && continue
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null; done
    ip netns del "$ns" 2>/dev/null && echo "removed namespace $ns, left by a killed journey run"
  done
}

j_start() {  # j_start NAME: work dir, trap
  j_sweep_orphans
  J_DIR=$(mktemp -d "/tmp/noloco-journey-$1.XXXXXX")
  trap j_cleanup EXIT
  trap 'exit 130' INT TERM
  echo "journey $1: work dir $J_DIR (KEEP=1 keeps it), namespaces ${J_PREFIX}-*"
}

j_ns_add() {  # j_ns_add SHORT -> namespace name in $REPLY
  REPLY="${J_PREFIX}-$1"
  ip netns add "$REPLY" || { echo "FAIL: ip netns add $REPLY"; exit 1; }
  J_NS+=("$REPLY")
  ip -n "$REPLY" link set lo up
}

# The internet: a namespace with a bridge. Sets J_INET.
j_internet() {
  j_ns_add inet; J_INET=$REPLY
  ip -n "$J_INET" link add br0 type bridge
  ip -n "$J_INET" link set br0 up
}

# Plugs namespace NS into the internet with address IP/24 on interface `wan`.
j_plug() {  # j_plug NS IP TAG
  local ns=$1 ip=$2 tag=$3
  ip link add "${J_PREFIX}${tag}a" type veth peer name "${J_PREFIX}${tag}b" || exit 1
  ip link set "${J_PREFIX}${tag}a" netns "$J_INET"
  ip -n "$J_INET" link set "${J_PREFIX}${tag}a" master br0 up
  ip link set "${J_PREFIX}${tag}b" netns "$ns"
  ip -n "$ns" link set "${J_PREFIX}${tag}b" name wan
  ip -n "$ns" addr add "$ip/24" dev wan
  ip -n "$ns" link set wan up
}

# A public machine on the internet at 198.51.100.$1. Sets REPLY to its namespace.
j_public_host() {  # j_public_host OCTET NAME
  j_ns_add "$2"; local ns=$REPLY
  j_plug "$ns" "198.51.100.$1" "p$1"
  REPLY=$ns
}

# A home machine behind its own NAT router: router WAN 198.51.100.$1, LAN 10.$1.0.0/24, the
# machine at 10.$1.0.2. Sets REPLY to the machine's namespace, J_ROUTER to the router's.
j_nat_host() {  # j_nat_host OCTET NAME
  local n=$1
  j_ns_add "r$n"; local r=$REPLY
  j_plug "$r" "198.51.100.$n" "r$n"
  j_ns_add "$2"; local h=$REPLY
  ip link add "${J_PREFIX}l${n}a" type veth peer name "${J_PREFIX}l${n}b" || exit 1
  ip link set "${J_PREFIX}l${n}a" netns "$r"
  ip -n "$r" link set "${J_PREFIX}l${n}a" name lan
  ip -n "$r" addr add "10.$n.0.1/24" dev lan
  ip -n "$r" link set lan up
  ip link set "${J_PREFIX}l${n}b" netns "$h"
  ip -n "$h" link set "${J_PREFIX}l${n}b" name eth0
  ip -n "$h" addr add "10.$n.0.2/24" dev eth0
  ip -n "$h" link set eth0 up
  ip -n "$h" route add default via "10.$n.0.1"
  ip netns exec "$r" sysctl -qw net.ipv4.ip_forward=1
  # The NAT: everything the home network sends out leaves with the router's address; nothing
  # from outside gets in unless it answers a connection from inside.
  ip netns exec "$r" iptables -t nat -A POSTROUTING -o wan -j MASQUERADE || { echo "FAIL: iptables MASQUERADE"; exit 1; }
  ip netns exec "$r" iptables -A FORWARD -i wan -o lan -m state --state ESTABLISHED,RELATED -j ACCEPT
  ip netns exec "$r" iptables -A FORWARD -i wan -o lan -j DROP
  # Like most home routers, it stays silent to unsolicited packets on its WAN side (no RST from
  # its own closed ports). A hole punch relies on that: the peer's SYN that arrives a moment
  # before ours has left is dropped and retransmitted, not answered with a reset that ends the
  # attempt (docs/protocols/dcutr.md).
  ip netns exec "$r" iptables -A INPUT -i wan -m state --state NEW,INVALID -j DROP
  J_ROUTER=$r
  REPLY=$h
}

# 0 when a TCP connection from namespace NS to IP:PORT opens within 3 s.
j_tcp_open() {  # j_tcp_open NS IP PORT
  ip netns exec "$1" timeout 3 bash -c "exec 3<>/dev/tcp/$2/$3" 2>/dev/null
}

# Starts `noloco ARGS...` in namespace NS as machine NAME (its own HOME, so its own data dir);
# stdout (--json events) to $J_DIR/NAME.events, stderr to $J_DIR/NAME.log. Sets REPLY to the pid.
j_noloco_bg() {  # j_noloco_bg NS NAME ARGS...
  local ns=$1 name=$2; shift 2
  mkdir -p "$J_DIR/$name"
  ip netns exec "$ns" env HOME="$J_DIR/$name" OMP_WAIT_POLICY=PASSIVE "$NOLOCO" "$@" \
    >>"$J_DIR/$name.events" 2>>"$J_DIR/$name.log" &
  REPLY=$!
  J_PIDS+=("$REPLY")
}

# Waits until FILE has a line matching REGEX, at most SECONDS (scaled). 0 when it did.
j_wait_for() {  # j_wait_for FILE REGEX SECONDS
  local i
  for ((i = 0; i < $(j_scaled "$3") * 2; i++)); do
    grep -qE "$2" "$1" 2>/dev/null && return 0
    sleep 0.5
  done
  return 1
}

# Waits for PID to exit, at most SECONDS; kills it after that. 0 when it exited by itself.
j_wait_exit() {  # j_wait_exit PID SECONDS
  local i
  for ((i = 0; i < $2 * 2; i++)); do
    kill -0 "$1" 2>/dev/null || return 0
    sleep 0.5
  done
  kill "$1" 2>/dev/null
  return 1
}

# Waits for every PID to exit within SECONDS (scaled) in all; stops (SIGTERM) those still running
# after that. 0 when all exited by themselves.
j_wait_all() {  # j_wait_all SECONDS PID...
  local deadline=$((SECONDS + $(j_scaled "$1"))) pid ok=0; shift
  for pid in "$@"; do
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.5; done
  done
  for pid in "$@"; do
    if kill -0 "$pid" 2>/dev/null; then kill "$pid"; ok=1; fi
  done
  for pid in "$@"; do j_wait_exit "$pid" 30; done
  return $ok
}

# The value of "field" in the first JSON event of kind EVENT in FILE.
j_event_field() {  # j_event_field FILE EVENT FIELD
  python3 - "$@" <<'PY'
import json, sys
path, kind, field = sys.argv[1:4]
for line in open(path):
    try:
        e = json.loads(line)
    except ValueError:
        continue
    if e.get("event") == kind and field in e:
        print(e[field] if not isinstance(e[field], (list, dict)) else json.dumps(e[field]))
        break
PY
}

j_finish() {
  if ((J_FAILS == 0)); then echo "journey $(basename "$0" .sh): all checks passed"; exit 0; fi
  echo "journey $(basename "$0" .sh): $J_FAILS check(s) failed (logs: KEEP=1 keeps $J_DIR)"
  exit 1
}
