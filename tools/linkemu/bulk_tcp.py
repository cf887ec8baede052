#!/usr/bin/env python3
"""Plain TCP bulk transfer for measuring a linkemu link's rate.

  bulk_tcp.py sink IP:PORT          accept one connection, read to EOF, print the rate
  bulk_tcp.py send IP:PORT --from IP --mb N   send N MB (10^6 bytes) from source IP, then close

The sink prints "bytes B seconds S rate R MB/s" where S runs from the first byte received to
EOF (so connection setup and the one-way delay are not counted) and R = B / S / 10^6.
"""
import argparse
import socket
import sys
import time


def hostport(s):
    host, port = s.rsplit(":", 1)
    return host, int(port)


def sink(addr):
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(addr)
    srv.listen(1)
    print("listening", flush=True)
    conn, _ = srv.accept()
    total, first = 0, None
    while True:
        b = conn.recv(1 << 20)
        if not b:
            break
        if first is None:
            first = time.monotonic()
        total += len(b)
    secs = time.monotonic() - first if first else 0.0
    rate = total / secs / 1e6 if secs > 0 else 0.0
    print(f"bytes {total} seconds {secs:.3f} rate {rate:.2f} MB/s", flush=True)


def send(addr, source, mb):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if source:
        s.bind((source, 0))
    s.connect(addr)
    block = bytes(1 << 16)
    left = mb * 1000000
    while left > 0:
        n = s.send(block[:min(left, len(block))])
        left -= n
    s.shutdown(socket.SHUT_WR)
    while s.recv(1 << 16):
        pass
    s.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", choices=["sink", "send"])
    ap.add_argument("addr", type=hostport)
    ap.add_argument("--from", dest="source", default="")
    ap.add_argument("--mb", type=int, default=50)
    a = ap.parse_args()
    if a.mode == "sink":
        sink(a.addr)
    else:
        send(a.addr, a.source, a.mb)


if __name__ == "__main__":
    sys.exit(main())
