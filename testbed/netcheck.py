"""Traffic checks from inside container namespaces (busybox tools, short timeouts)."""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

from testbed.cluster import in_ns


def ping(ns: str, ip: str, count: int = 1, wait: float = 1.0) -> bool:
    """True if at least one of *count* echo requests was answered (ping's exit status)."""
    return in_ns(ns, "ping", "-c", str(count), "-W", str(wait), ip, check=False).returncode == 0


def ping_eventually(ns: str, ip: str, timeout: float = 5.0) -> bool:
    """The very first packet towards a new VTEP can be lost while OVS resolves the peer's underlay
    MAC; connectivity is what is asserted, so retry briefly."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ping(ns, ip):
            return True
    return False


def http_server(ns: str, port: int, workdir: Path) -> subprocess.Popen[bytes]:
    """busybox httpd in the foreground serving "ok"; the caller terminates it."""
    root = workdir / f"www-{ns}-{port}"
    root.mkdir(parents=True, exist_ok=True)
    (root / "index.html").write_text("ok\n")
    proc = subprocess.Popen(["ip", "netns", "exec", ns, "busybox", "httpd", "-f", "-p", str(port),
                             "-h", str(root)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if f":{port} " in in_ns(ns, "busybox", "netstat", "-ltn", check=False).stdout:
            return proc
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"httpd on {ns}:{port} did not start")


def http_ok(ns: str, ip: str, port: int, timeout: int = 2) -> bool:
    """One HTTP GET with busybox nc (busybox wget crashes on this machine); True when "ok" came back,
    False when the connection could not be made within *timeout* seconds."""
    res = subprocess.run(["ip", "netns", "exec", ns, "busybox", "nc", "-w", str(timeout), ip, str(port)],
                         input="GET / HTTP/1.0\r\n\r\n", capture_output=True, text=True,
                         timeout=timeout + 5, check=False)
    return res.returncode == 0 and res.stdout.rstrip().endswith("\nok")


class Pinger:
    """A steady ping running in the background (every *interval* seconds, *count* echoes), to measure
    what an event costs the traffic: start it, cause the event, then ``result()``."""

    def __init__(self, ns: str, ip: str, count: int = 300, interval: float = 0.02) -> None:
        self.process = subprocess.Popen(["ip", "netns", "exec", ns, "ping", "-i", str(interval), "-c", str(count), ip],
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def result(self, timeout: float = 60) -> tuple[int, int, str]:
        """(sent, received, ping's output) once ping has finished."""
        out, _ = self.process.communicate(timeout=timeout)
        stats = re.search(r"(\d+) packets transmitted, (\d+) received", out)
        if stats is None:
            raise AssertionError(f"ping gave no statistics: {out[-500:]}")
        return int(stats.group(1)), int(stats.group(2)), out
