#!/usr/bin/env python3
"""Writes a linkemu topology (docs/linkemu.md) for N nodes on loopback from a profile.

Node i (0-based) is named n<i>, really listens on 127.0.1.<i+1>:PORT, dials from 127.0.1.<i+1>
and is dialed through the proxy at 127.0.2.<i+1>:PORT.

Profiles (delays are one-way):
  uniform  every link 50 ms, 100 Mbit/s
  lan      every link 0.25 ms, 1000 Mbit/s
  hetero   node i gets access class i % 3: 10 ms / 1000 Mbit, 50 ms / 100 Mbit, 150 ms / 20 Mbit;
           the link between two nodes takes the worse of the two (the larger delay and the
           smaller rate), since either end's access link is the bottleneck.
"""
import argparse
import json
import sys

CLASSES = [(10.0, 1000.0), (50.0, 100.0), (150.0, 20.0)]
PROFILES = {"uniform": (50.0, 100.0), "lan": (0.25, 1000.0)}


def build(n, profile, port, seed, jitter_ms):
    nodes = [{"name": f"n{i}", "listen": f"127.0.1.{i + 1}:{port}", "proxy": f"127.0.2.{i + 1}:{port}"}
             for i in range(n)]
    topo = {"seed": seed, "nodes": nodes}
    if profile in PROFILES:
        delay, rate = PROFILES[profile]
        topo["default"] = {"delay_ms": delay, "rate_mbit": rate, "jitter_ms": jitter_ms}
        return topo
    topo["default"] = {"jitter_ms": jitter_ms}
    links = {}
    for i in range(n):
        for j in range(i + 1, n):
            (di, ri), (dj, rj) = CLASSES[i % 3], CLASSES[j % 3]
            links[f"n{i}<->n{j}"] = {"delay_ms": max(di, dj), "rate_mbit": min(ri, rj)}
    topo["links"] = links
    return topo


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nodes", type=int, required=True, help="number of nodes (2..254)")
    ap.add_argument("--profile", choices=["uniform", "hetero", "lan"], required=True)
    ap.add_argument("--port", type=int, default=4001, help="port of every node and proxy address")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--jitter-ms", type=float, default=0.0, help="jitter on every link")
    ap.add_argument("--out", help="file to write (default: stdout)")
    a = ap.parse_args()
    if not 2 <= a.nodes <= 254:
        ap.error("--nodes must be in 2..254")
    if not 1 <= a.port <= 65535:
        ap.error("--port must be in 1..65535")
    text = json.dumps(build(a.nodes, a.profile, a.port, a.seed, a.jitter_ms), indent=2) + "\n"
    if a.out:
        with open(a.out, "w") as f:
            f.write(text)
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    main()
