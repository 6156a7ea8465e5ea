"""The servers and the client of the NetworkPolicy truth tables, run inside a pod's network
namespace (the role of agnhost in Kubernetes' e2e tests).

``python -m testbed.netpol_probe serve PORT...`` answers on every PORT over TCP (accept, write "ok",
close) and UDP (echo each datagram); ``probe tcp|udp PORT IP...`` tries every IP at once and prints
``{"IP": true|false}``: a TCP connection that completes, a UDP datagram that comes back. A dropped
packet shows as a timeout (policy drops silently), so each probe waits at most ``--timeout``.
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import threading
from concurrent.futures import ThreadPoolExecutor


def _tcp_server(port: int) -> None:
    srv = socket.create_server(("0.0.0.0", port), backlog=128, reuse_port=True)
    while True:
        conn, _ = srv.accept()
        try:
            conn.sendall(b"ok\n")
        except OSError:
            pass
        conn.close()


def _udp_server(port: int) -> None:
    srv = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    srv.bind(("0.0.0.0", port))
    while True:
        data, peer = srv.recvfrom(2048)
        srv.sendto(data, peer)


def serve(ports: list[int]) -> None:
    for port in ports:
        for target in (_tcp_server, _udp_server):
            threading.Thread(target=target, args=(port,), daemon=True).start()
    print("serving", flush=True)
    threading.Event().wait()


def probe_one(proto: str, ip: str, port: int, timeout: float) -> bool:
    if proto == "tcp":
        try:
            with socket.create_connection((ip, port), timeout=timeout) as conn:
                return conn.recv(3) == b"ok\n"
        except OSError:
            return False
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout / 2)
        for _ in range(2):  # one retry: a first datagram may wait for ARP
            try:
                sock.sendto(b"probe", (ip, port))
                if sock.recvfrom(64)[0] == b"probe":
                    return True
            except OSError:
                pass
    return False


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve")
    s.add_argument("ports", type=int, nargs="+")
    p = sub.add_parser("probe")
    p.add_argument("proto", choices=("tcp", "udp"))
    p.add_argument("port", type=int)
    p.add_argument("ips", nargs="+")
    p.add_argument("--timeout", type=float, default=1.0)
    args = ap.parse_args(argv)
    if args.cmd == "serve":
        serve(args.ports)
        return 0
    with ThreadPoolExecutor(max_workers=len(args.ips)) as pool:
        results = list(pool.map(lambda ip: probe_one(args.proto, ip, args.port, args.timeout), args.ips))
    print(json.dumps(dict(zip(args.ips, results, strict=True))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
