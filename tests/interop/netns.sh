#!/bin/sh
# Network namespaces for the AutoNAT and DCUtR interop cases (interop_test.mjs), and by hand.
#   netns.sh up PREFIX     creates PREFIX-pub, PREFIX-o, PREFIX-r, PREFIX-n
#   netns.sh down PREFIX   removes them (never fails)
# js-libp2p treats the documentation ranges (198.51.100.0/24, 203.0.113.0/24) and RFC 1918 as
# private and never hole-punches or dials back to them (@libp2p/utils private-ip.js), so the
# "public" side uses 11.13.0.0/24: a range that exists only inside these namespaces.
#   PREFIX-pub  bridge br0 with 11.13.0.1 (js relay) and 11.13.0.10 (js peer)
#   PREFIX-o    our public node at 11.13.0.2
#   PREFIX-r    a home router: WAN 11.13.0.3, LAN 10.13.1.1; MASQUERADE (keeps source ports when
#               free) and answers an unsolicited SYN from the WAN with a reset, so a dial to an
#               address nobody mapped fails at once instead of hanging
#   PREFIX-n    our NATed node at 10.13.1.2 behind PREFIX-r
set -e
cmd=$1
p=$2
if [ "$cmd" = down ]; then
  for n in n r o pub; do ip netns del "$p-$n" 2>/dev/null || true; done
  exit 0
fi
[ "$cmd" = up ] && [ -n "$p" ] || { echo "usage: $0 up|down PREFIX" >&2; exit 2; }
for n in pub o r n; do ip netns add "$p-$n"; ip -n "$p-$n" link set lo up; done
ip -n "$p-pub" link add br0 type bridge
ip -n "$p-pub" addr add 11.13.0.1/24 dev br0
ip -n "$p-pub" addr add 11.13.0.10/24 dev br0
ip -n "$p-pub" link set br0 up
# Our public node and the router's WAN side on the bridge.
for side in o r; do
  ip link add wan netns "$p-$side" type veth peer name "to$side" netns "$p-pub"
  ip -n "$p-pub" link set "to$side" master br0 up
  ip -n "$p-$side" link set wan up
done
ip -n "$p-o" addr add 11.13.0.2/24 dev wan
ip -n "$p-r" addr add 11.13.0.3/24 dev wan
# The NATed node behind the router.
ip link add lan netns "$p-r" type veth peer name eth0 netns "$p-n"
ip -n "$p-r" addr add 10.13.1.1/24 dev lan
ip -n "$p-r" link set lan up
ip -n "$p-n" addr add 10.13.1.2/24 dev eth0
ip -n "$p-n" link set eth0 up
ip -n "$p-n" route add default via 10.13.1.1
ip netns exec "$p-r" sysctl -qw net.ipv4.ip_forward=1
ip netns exec "$p-r" iptables -t nat -A POSTROUTING -o wan -j MASQUERADE
ip netns exec "$p-r" iptables -A INPUT -i wan -p tcp -m conntrack --ctstate NEW,INVALID -j REJECT --reject-with tcp-reset
ip netns exec "$p-r" iptables -A FORWARD -i wan -p tcp -m conntrack --ctstate NEW,INVALID -j REJECT --reject-with tcp-reset
