"""Traffic checks from inside container namespaces (busybox tools, short timeouts)."""

from __future__ import annotations

import itertools
import re
import signal
import subprocess
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from testbed.cluster import SimHost, in_ns


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


@dataclass(frozen=True)
class PingResult:
    """What a background ping saw: replies by sequence number, with ping's own timestamps."""

    sent: int
    replies: dict[int, float]  # icmp_seq -> time the reply arrived (epoch seconds)
    duplicates: int

    @property
    def lost(self) -> int:
        """Requests without a reply, up to the last one answered (the one in flight when ping was
        stopped does not count)."""
        return max(self.replies, default=0) - len(self.replies)

    @property
    def gap(self) -> float:
        """The longest time between two consecutive replies, in seconds: the outage a fault caused
        (the interval itself when nothing was lost)."""
        times = sorted(self.replies.values())
        return max((b - a for a, b in itertools.pairwise(times)), default=0.0)


def quiet_gap(ns: str, ip: str, seconds: float = 1.0) -> float:
    """The longest gap between replies of a 20 ms ping without a fault: the reference a fault's gap
    is compared with, measured in the same run."""
    pinger = Pinger(ns, ip)
    time.sleep(seconds)
    return pinger.stop().gap


def gap_report(fault: str, result: PingResult, quiet: float) -> str:
    """One line for a fault's ping gap next to the quiet reference."""
    return (f"ping gap, {fault}: {result.gap * 1000:.0f} ms, lost {result.lost} of {max(result.replies, default=0)} "
            f"(20 ms ping; quiet run {quiet * 1000:.0f} ms, ratio {result.gap / quiet:.1f})")


class Pinger:
    """A ping every *interval* seconds from namespace *ns* to *ip*, in the background until ``stop``."""

    def __init__(self, ns: str, ip: str, interval: float = 0.02) -> None:
        self.proc = subprocess.Popen(["ip", "netns", "exec", ns, "ping", "-D", "-i", str(interval), ip],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def stop(self) -> PingResult:
        self.proc.send_signal(signal.SIGINT)  # ip netns exec execs ping: this is ping's pid
        out, _ = self.proc.communicate(timeout=10)
        replies: dict[int, float] = {}
        duplicates = 0
        for stamp, seq, dup in re.findall(r"^\[(\d+\.\d+)\] \d+ bytes from .*icmp_seq=(\d+) .*?( \(DUP!\))?$",
                                          out, re.MULTILINE):
            if dup or int(seq) in replies:
                duplicates += 1
            else:
                replies[int(seq)] = float(stamp)
        sent = re.search(r"(\d+) packets transmitted", out)
        if sent is None:
            raise RuntimeError(f"ping did not run: {out[-500:]}")
        return PingResult(int(sent.group(1)), replies, duplicates)


def dump_hosts(hosts: Iterable[SimHost], label: str) -> Path:
    """Each host's OpenFlow tables, cached datapath flows, tracked connections and agent log, written
    to a fresh directory for a failure report (too long for the report itself, which names it)."""
    out_dir = Path(f"/tmp/{label}-{int(time.time())}")
    out_dir.mkdir(parents=True, exist_ok=True)
    for host in hosts:
        for name, args in (("flows", ("ovs-ofctl", "-O", "OpenFlow13", "dump-flows", host.bridge)),
                           ("dpflows", ("ovs-appctl", "dpctl/dump-flows", "-m")),
                           ("conntrack", ("ovs-appctl", "dpctl/dump-conntrack", "-m"))):
            (out_dir / f"{host.name}-{name}.txt").write_text(host.ovs.run(*args, check=False))
        log = host.rundir / "agent.log"
        if log.exists():
            (out_dir / f"{host.name}-agent.log").write_bytes(log.read_bytes()[-2_000_000:])
    return out_dir
