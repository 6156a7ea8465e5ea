"""Load-balancing checks between container namespaces: which provider answers each connection.

``python -m testbed.lbcheck serve NAME PORT`` (in a provider's namespace) answers on TCP and UDP
*PORT* with its *NAME*: a TCP connection gets ``NAME\\n`` for every chunk it sends, a UDP datagram
gets ``NAME``. ``connect IP PORT PROTO N`` makes *N* separate connections (TCP) or exchanges from *N*
separate sockets (UDP, so *N* source ports) and prints ``{"counts": {name: n}, "failed": k}``.
``hold IP PORT SECONDS`` keeps one TCP connection and sends a byte every 0.1 s, printing one JSON
line per answer (``{"t": seconds, "name": ...}``) or the error that ended it (``{"t": ..., "error": ...}``).
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import IO, Any

from testbed.process import CHILD_ENV, REPO, python_in_ns, spawn_until_printed


def _in_ns(ns: str, *args: str) -> list[str]:
    return python_in_ns(ns, "testbed.lbcheck", *args)


class NameServer:
    """``serve`` running in *ns*: answers with *name* on TCP and UDP *port* until ``stop()``."""

    def __init__(self, ns: str, name: str, port: int, workdir: Path) -> None:
        self.proc = spawn_until_printed(_in_ns(ns, "serve", name, str(port)), workdir / f"serve-{name}-{port}.log",
                                        "serving", f"name server {name} in {ns}", env=CHILD_ENV, cwd=REPO)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(5)


def connect(ns: str, ip: str, port: int, proto: str, n: int, wait: float = 3.0) -> tuple[Counter[str], int]:
    """*n* connections from *ns* to *ip*:*port*, each given *wait* seconds for its answer: how many each
    name answered, and how many failed."""
    result = connect_timed(ns, ip, port, proto, n, wait)
    return Counter(result["counts"]), int(result["failed"])


def connect_timed(ns: str, ip: str, port: int, proto: str, n: int, wait: float = 3.0) -> dict[str, Any]:
    """``connect`` with the whole result: counts, failed, and ``seconds`` the *n* connections took
    (measured in the client, one after the other)."""
    out = subprocess.run(_in_ns(ns, "connect", ip, str(port), proto, str(n), "--wait", str(wait)),
                         capture_output=True, text=True, env=CHILD_ENV, cwd=REPO, timeout=60 + n * wait,
                         check=True).stdout
    return dict(json.loads(out))


class Holder:
    """``hold`` running in *ns*: one long-lived TCP connection; ``answers()`` reads what it printed,
    each line stamped with this process's ``time.monotonic()`` when it was read (``seen``)."""

    def __init__(self, ns: str, ip: str, port: int, seconds: float) -> None:
        self.proc = subprocess.Popen(_in_ns(ns, "hold", ip, str(port), str(seconds)), stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, env=CHILD_ENV, cwd=REPO)
        self.lines: list[dict[str, object]] = []
        self._reader = threading.Thread(target=self._read, args=(self.proc.stdout,), daemon=True)
        self._reader.start()

    def _read(self, stream: IO[str] | None) -> None:
        assert stream is not None
        for line in stream:
            self.lines.append({**json.loads(line), "seen": time.monotonic()})

    def answers(self) -> list[dict[str, object]]:
        return list(self.lines)

    def stop(self) -> list[dict[str, object]]:
        if self.proc.poll() is None:
            self.proc.terminate()
        self.proc.wait(5)
        self._reader.join(5)
        return self.answers()


def _serve(name: str, port: int) -> None:
    reply = f"{name}\n".encode()
    tcp = socket.socket()
    tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    tcp.bind(("0.0.0.0", port))
    tcp.listen(512)
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("0.0.0.0", port))

    def answer_udp() -> None:
        while True:
            _, peer = udp.recvfrom(2048)
            udp.sendto(name.encode(), peer)

    def answer_tcp(conn: socket.socket) -> None:
        with conn:
            try:
                while conn.recv(2048):
                    conn.sendall(reply)
            except OSError:
                pass

    threading.Thread(target=answer_udp, daemon=True).start()
    print("serving", flush=True)
    while True:
        conn, _ = tcp.accept()
        threading.Thread(target=answer_tcp, args=(conn,), daemon=True).start()


def _one(ip: str, port: int, proto: str, wait: float) -> str:
    if proto == "udp":
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(wait / 3)
            for _ in range(3):  # a lost datagram is retried from the same socket (same connection)
                sock.sendto(b"x", (ip, port))
                try:
                    return sock.recv(2048).decode()
                except TimeoutError:
                    continue
            raise TimeoutError("no UDP answer")
    with socket.create_connection((ip, port), timeout=wait) as conn:
        conn.settimeout(wait)
        conn.sendall(b"x")
        return conn.makefile().readline().strip()


def _connect(ip: str, port: int, proto: str, n: int, wait: float) -> None:
    counts: Counter[str] = Counter()
    failed = 0
    started = time.perf_counter()
    for _ in range(n):
        try:
            counts[_one(ip, port, proto, wait)] += 1
        except OSError:
            failed += 1
    print(json.dumps({"counts": counts, "failed": failed, "seconds": time.perf_counter() - started}))


def _hold(ip: str, port: int, seconds: float) -> None:
    start = time.monotonic()
    try:
        conn = socket.create_connection((ip, port), timeout=3)
        conn.settimeout(2)
        lines = conn.makefile()
        while time.monotonic() - start < seconds:
            conn.sendall(b"x")
            name = lines.readline().strip()
            if not name:
                raise ConnectionError("closed by the peer")
            print(json.dumps({"t": round(time.monotonic() - start, 3), "name": name}), flush=True)
            time.sleep(0.1)
    except OSError as exc:
        print(json.dumps({"t": round(time.monotonic() - start, 3), "error": str(exc) or type(exc).__name__}),
              flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m testbed.lbcheck", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    p_serve = sub.add_parser("serve", help="answer with NAME on TCP and UDP PORT")
    p_serve.add_argument("name")
    p_serve.add_argument("port", type=int)
    p_conn = sub.add_parser("connect", help="N connections, print who answered")
    p_conn.add_argument("ip")
    p_conn.add_argument("port", type=int)
    p_conn.add_argument("proto", choices=("tcp", "udp"))
    p_conn.add_argument("n", type=int)
    p_conn.add_argument("--wait", type=float, default=3.0, help="seconds each connection waits for its answer")
    p_hold = sub.add_parser("hold", help="one TCP connection for SECONDS, one line per answer")
    p_hold.add_argument("ip")
    p_hold.add_argument("port", type=int)
    p_hold.add_argument("seconds", type=float)
    args = parser.parse_args(argv)
    if args.cmd == "serve":
        _serve(args.name, args.port)
    elif args.cmd == "connect":
        _connect(args.ip, args.port, args.proto, args.n, args.wait)
    else:
        _hold(args.ip, args.port, args.seconds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
