#!/bin/sh
# Two NATed peers and a public relay in network namespaces, for nat_netns_e2e.cc (and by hand).
#   nat_netns.sh up PREFIX [random]   creates PREFIX-pub, -ra, -rb, -a, -b
#   nat_netns.sh down PREFIX          removes them (never fails)
# Addresses (only inside these namespaces): public 198.51.100.0/24 on a bridge in PREFIX-pub
# (the relay at .1, router A's WAN at .2, router B's at .3); A at 10.13.1.2 behind router A,
# B at 10.13.2.2 behind router B. Each router MASQUERADEs its LAN and drops unsolicited packets
# from the WAN, as a home router's firewall does (a SYN with no mapping is dropped, not answered
# with a reset). "random": router B maps source ports at random (a symmetric NAT, where hole
# punching by port prediction cannot work).
set -e
cmd=$1
p=$2
if [ "$cmd" = down ]; then
  for n in a b ra rb pub; do ip netns del "$p-$n" 2>/dev/null || true; done
  exit 0
fi
[ "$cmd" = up ] || { echo "usage: $0 up|down PREFIX [random]" >&2; exit 2; }
for n in pub ra rb a b; do ip netns add "$p-$n"; ip -n "$p-$n" link set lo up; done
ip -n "$p-pub" link add br0 type bridge
ip -n "$p-pub" addr add 198.51.100.1/24 dev br0
ip -n "$p-pub" link set br0 up
i=2
for side in a b; do
  net=$([ $side = a ] && echo 1 || echo 2)
  r="$p-r$side"
  ip link add wan netns "$r" type veth peer name "to$side" netns "$p-pub"
  ip -n "$p-pub" link set "to$side" master br0 up
  ip -n "$r" addr add "198.51.100.$i/24" dev wan
  ip -n "$r" link set wan up
  ip link add lan netns "$r" type veth peer name eth0 netns "$p-$side"
  ip -n "$r" addr add "10.13.$net.1/24" dev lan
  ip -n "$r" link set lan up
  ip -n "$p-$side" addr add "10.13.$net.2/24" dev eth0
  ip -n "$p-$side" link set eth0 up
  ip -n "$p-$side" route add default via "10.13.$net.1"
  ip netns exec "$r" sysctl -qw net.ipv4.ip_forward=1
  masq="-j MASQUERADE"
  [ "$side" = b ] && [ "${3:-}" = random ] && masq="-j MASQUERADE --random-fully"
  ip netns exec "$r" iptables -t nat -A POSTROUTING -o wan $masq
  ip netns exec "$r" iptables -A INPUT -i wan -m conntrack --ctstate NEW,INVALID -j DROP
  ip netns exec "$r" iptables -A FORWARD -i wan -m conntrack --ctstate NEW,INVALID -j DROP
  i=$((i + 1))
done
