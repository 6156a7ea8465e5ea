"""Host access benchmark: TCP throughput and ping latency from a container to the server outside the
cluster (through the host port, the host's routing and MASQUERADE, and the host's underlay bridge),
next to references measured in the same run on the same machine:

- ``host -> server``: the host itself to the server (its underlay bridge only: the path's last leg);
- ``container -> container``: two containers on the same host through the integration bridge;
- ``direct veth``: two plain namespaces joined by a veth pair (the kernel alone, no OVS).

Each figure is the median of ``--runs`` runs (TCP: ``--seconds`` per run, its first second dropped;
ping: ``--count`` echoes 10 ms apart, average RTT). Ratios are against the direct veth and against the
host's own path to the server.

    python bench/host_access.py [--runs 3] [--seconds 3] [--count 100]   (root)
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from agent.state import DesiredState, Endpoint, Host, Network  # noqa: E402
from testbed.cluster import OUTSIDE_SERVER_IP, Cluster, in_ns, sh  # noqa: E402
from testbed.netcheck import ping_eventually  # noqa: E402
from testbed.traffic import Stream, mbits  # noqa: E402

NET = Network("bench", "n", "vxlan", "10.66.0.0/24", vni=6600, gateway="10.66.0.254", host_access=True)
_port = iter(range(6000, 7000))


def tcp_mbits(src: str, dst: str, dst_ip: str, seconds: float) -> float:
    return mbits(Stream(src, dst, dst_ip, next(_port), seconds).intervals()[4:])


def rtt_ms(src: str, dst_ip: str, count: int) -> float:
    out = in_ns(src, "ping", "-q", "-c", str(count), "-i", "0.01", dst_ip, timeout=count * 0.1 + 30).stdout
    found = re.search(r"= [\d.]+/([\d.]+)/", out)
    if not found:
        raise RuntimeError(f"no RTT in ping output: {out}")
    return float(found.group(1))


def direct_pair(prefix: str) -> tuple[str, str]:
    """Two namespaces joined by a veth pair, 10.67.0.1 and .2 (removed with the cluster: its prefix)."""
    a, b = f"{prefix}va", f"{prefix}vb"
    for ns in (a, b):
        sh("ip", "netns", "add", ns)
        in_ns(ns, "ip", "link", "set", "lo", "up")
    sh("ip", "link", "add", "eth0", "netns", a, "type", "veth", "peer", "name", "eth0", "netns", b)
    for ns, ip in ((a, "10.67.0.1"), (b, "10.67.0.2")):
        in_ns(ns, "ip", "addr", "add", f"{ip}/24", "dev", "eth0")
        in_ns(ns, "ip", "link", "set", "eth0", "up")
    return a, b


def median(measure: Callable[[], float], runs: int) -> float:
    return statistics.median(measure() for _ in range(runs))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--count", type=int, default=100)
    args = parser.parse_args(argv)
    cluster = Cluster(n_hosts=1).up()
    try:
        host = cluster.hosts[0]
        server = cluster.outside_server()
        a, c = cluster.container("a"), cluster.container("c")
        cluster.apply(DesiredState(networks=(NET,), hosts=(Host(host.name, host.vtep_ip),), revision=1, endpoints=(
            Endpoint("a", "bench", "n", "10.66.0.1", "h1", netns=a),
            Endpoint("c", "bench", "n", "10.66.0.3", "h1", netns=c))))
        if not (ping_eventually(a, OUTSIDE_SERVER_IP, 10) and ping_eventually(a, "10.66.0.3")):
            raise RuntimeError("the container does not reach the server or its neighbour")
        va, vb = direct_pair(cluster.prefix)
        paths = {
            "container -> server (host access, SNAT)": (a, server, OUTSIDE_SERVER_IP),
            "host -> server (underlay bridge)": (host.netns, server, OUTSIDE_SERVER_IP),
            "container -> container (same host, OVS)": (a, c, "10.66.0.3"),
            "direct veth (kernel only)": (va, vb, "10.67.0.2"),
        }
        results = {name: (median(lambda s=src, d=dst, ip=ip: tcp_mbits(s, d, ip, args.seconds), args.runs),
                          median(lambda s=src, ip=ip: rtt_ms(s, ip, args.count), args.runs))
                   for name, (src, dst, ip) in paths.items()}
    finally:
        cluster.down()
    veth_tcp, veth_rtt = results["direct veth (kernel only)"]
    host_tcp, host_rtt = results["host -> server (underlay bridge)"]
    print(f"median of {args.runs} runs; TCP {args.seconds:g} s per run, ping {args.count} x 10 ms")
    print(f"{'path':<42}{'TCP Mbit/s':>11}{'x veth':>8}{'x host':>8}{'RTT ms':>9}{'x veth':>8}{'x host':>8}")
    for name, (tcp, rtt) in results.items():
        print(f"{name:<42}{tcp:>11.0f}{tcp / veth_tcp:>8.3f}{tcp / host_tcp:>8.2f}"
              f"{rtt:>9.3f}{rtt / veth_rtt:>8.1f}{rtt / host_rtt:>8.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
