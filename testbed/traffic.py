"""Measured traffic between container namespaces: a TCP stream's throughput over time, and a packet
capture (tcpdump) on a container's interface.

``python -m testbed.traffic recv PORT SECONDS`` (in the receiver's namespace) accepts one connection and
prints, as one JSON list, the bytes received in each quarter second; ``send IP PORT SECONDS`` streams
to it. ``stream`` runs both and returns the per-interval figures, so a test can compare the rate before
and after a change made while the one connection keeps running.

``echo PORT`` is a line echo server that prints the peer address of every connection it accepts (what
the server saw as the source: host access tests check the source NAT with it); ``chat IP PORT``
connects once and sends each stdin line, printing each echoed line, so one connection can be used
before and after a change (``EchoServer``, ``EchoClient``).
"""

from __future__ import annotations

import argparse
import json
import select
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from testbed.process import CHILD_ENV, REPO, python_in_ns, spawn_until_printed

INTERVAL = 0.25  # seconds per figure


def _in_ns(ns: str, *args: str) -> list[str]:
    return python_in_ns(ns, "testbed.traffic", *args)


class Stream:
    """One TCP connection from *src* to *dst_ip* (in *dst*) for *seconds*; started on creation."""

    def __init__(self, src: str, dst: str, dst_ip: str, port: int, seconds: float) -> None:
        self.started = time.monotonic()
        self.receiver = subprocess.Popen(_in_ns(dst, "recv", str(port), str(seconds + 10)), stdout=subprocess.PIPE,
                                         stderr=subprocess.PIPE, text=True, env=CHILD_ENV, cwd=REPO)
        self.sender = subprocess.Popen(_in_ns(src, "send", dst_ip, str(port), str(seconds)), stdout=subprocess.PIPE,
                                       stderr=subprocess.PIPE, text=True, env=CHILD_ENV, cwd=REPO)

    def intervals(self, timeout: float = 60) -> list[int]:
        """Bytes received per INTERVAL, from the first byte on (waits for the stream to end)."""
        _, err = self.sender.communicate(timeout=timeout)
        if self.sender.returncode:
            self.receiver.kill()
            raise RuntimeError(f"sender failed: {err[-500:]}")
        out, err = self.receiver.communicate(timeout=timeout)
        if self.receiver.returncode:
            raise RuntimeError(f"receiver failed: {err[-500:]}")
        return list(json.loads(out))


class EchoServer:
    """``echo PORT`` in namespace *ns*, started and listening on creation; ``peers()`` are the source
    addresses of the connections it accepted."""

    def __init__(self, ns: str, port: int, workdir: Path) -> None:
        self.log = workdir / f"echo-{ns}-{port}-{time.monotonic_ns()}.txt"
        self.proc = spawn_until_printed(_in_ns(ns, "echo", str(port)), self.log, "ready", f"echo server in {ns}",
                                        env=CHILD_ENV, cwd=REPO)

    def peers(self) -> list[str]:
        return [line.split()[1] for line in self.log.read_text().splitlines() if line.startswith("peer ")]

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait(5)


class EchoClient:
    """One TCP connection from *ns* to an echo server, kept open: ``say`` sends a line and returns the
    echo (None if none came back within the timeout)."""

    def __init__(self, ns: str, ip: str, port: int, connect_timeout: float = 10) -> None:
        self.proc = subprocess.Popen(_in_ns(ns, "chat", ip, str(port), str(connect_timeout)), stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=CHILD_ENV, cwd=REPO)
        self.connected = self._line(connect_timeout + 5) == "connected"

    def _line(self, timeout: float) -> str | None:
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        return self.proc.stdout.readline().strip() if ready else None

    def say(self, text: str, timeout: float = 5) -> str | None:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(text + "\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            return None
        return self._line(timeout)

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait(5)


def mbits(chunks: list[int]) -> float:
    """Mbit/s over the given intervals."""
    return sum(chunks) * 8 / (len(chunks) * INTERVAL) / 1e6 if chunks else 0.0


def _recv(port: int, seconds: float) -> None:
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("0.0.0.0", port))
    server.listen(1)
    server.settimeout(seconds)
    conn, _ = server.accept()
    conn.settimeout(seconds)
    chunks: list[int] = []
    start = 0.0
    while True:
        data = conn.recv(1 << 16)
        if not data:
            break
        now = time.monotonic()
        start = start or now
        index = int((now - start) / INTERVAL)
        chunks += [0] * (index + 1 - len(chunks))
        chunks[index] += len(data)
    print(json.dumps(chunks[:-1]))  # the last interval is cut short by the end of the stream


def _send(ip: str, port: int, seconds: float) -> None:
    deadline = time.monotonic() + 10
    while True:
        try:
            conn = socket.create_connection((ip, port), timeout=2)
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    buf = b"\0" * (1 << 16)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        conn.sendall(buf)
    conn.close()


class Capture:
    """tcpdump on *iface* in *ns* with a filter, verbose, one line per packet, until ``stop()``."""

    def __init__(self, ns: str, bpf: str, workdir: Path, iface: str = "eth0") -> None:
        self.path = workdir / f"capture-{ns}-{time.monotonic_ns()}.txt"
        self.proc = spawn_until_printed(["ip", "netns", "exec", ns, "tcpdump", "-l", "--immediate-mode", "-n", "-v",
                                         "-i", iface, bpf], self.path, "listening on", f"tcpdump in {ns}")

    def text(self) -> str:
        return self.path.read_text(errors="replace")

    def stop(self) -> str:
        """Stop the capture and return what it printed."""
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(5)
        return self.text()


def _echo(port: int) -> None:
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("0.0.0.0", port))
    server.listen(16)
    print("ready", flush=True)

    def serve(conn: socket.socket) -> None:
        with conn, conn.makefile("rwb", buffering=0) as f:
            for line in f:
                f.write(line)

    while True:
        conn, peer = server.accept()
        print(f"peer {peer[0]} {peer[1]}", flush=True)
        threading.Thread(target=serve, args=(conn,), daemon=True).start()


def _chat(ip: str, port: int, connect_timeout: float) -> None:
    conn = socket.create_connection((ip, port), timeout=connect_timeout)
    conn.settimeout(None)
    print("connected", flush=True)
    with conn.makefile("rwb", buffering=0) as f:
        for line in sys.stdin:
            f.write(line.encode())
            print(f.readline().decode().strip(), flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m testbed.traffic", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    p_recv = sub.add_parser("recv", help="accept one TCP connection, print bytes per interval")
    p_recv.add_argument("port", type=int)
    p_recv.add_argument("seconds", type=float, help="give up waiting after this long")
    p_send = sub.add_parser("send", help="stream zeros to IP:PORT for SECONDS")
    p_send.add_argument("ip")
    p_send.add_argument("port", type=int)
    p_send.add_argument("seconds", type=float)
    p_echo = sub.add_parser("echo", help="line echo server; prints each accepted peer's address")
    p_echo.add_argument("port", type=int)
    p_chat = sub.add_parser("chat", help="one connection to an echo server: send stdin lines, print echoes")
    p_chat.add_argument("ip")
    p_chat.add_argument("port", type=int)
    p_chat.add_argument("connect_timeout", type=float, nargs="?", default=10.0)
    args = parser.parse_args(argv)
    if args.cmd == "recv":
        _recv(args.port, args.seconds)
    elif args.cmd == "send":
        _send(args.ip, args.port, args.seconds)
    elif args.cmd == "echo":
        _echo(args.port)
    else:
        _chat(args.ip, args.port, args.connect_timeout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
