"""Uplink bond failover: how long traffic stops when the active link goes down, and when it comes back.

    python bench/agent_bond_failover.py [--iterations 5] [--interval 0.01]

A 2-host simulated cluster (tests/cluster) where h1 has two trunk links bonded by its agent
(active-backup). A container on h1 pings one on h2 every ``--interval`` seconds over a VLAN network
while the root-namespace end of the active link is taken down (failover to the backup), and later
brought up again (the bond returns to the first member: ``bundle``'s active_backup picks the first
live member). The gap is lost echo replies times the interval. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import re
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from agent.state import DesiredState, Endpoint, Host, Network  # noqa: E402
from testbed.cluster import Cluster, sh  # noqa: E402


def lost_during(ns: str, ip: str, interval: float, action: list[str]) -> tuple[int, int]:
    """Ping continuously, run *action* (an ``ip link`` command) after 1 s, stop 2 s later."""
    ping = subprocess.Popen(["ip", "netns", "exec", ns, "ping", "-i", str(interval), "-W", "1", ip],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    time.sleep(1)
    sh(*action)
    time.sleep(2)
    ping.send_signal(signal.SIGINT)
    out, _ = ping.communicate(timeout=10)
    stats = re.search(r"(\d+) packets transmitted, (\d+) received", out)
    if not stats:
        raise RuntimeError(out)
    return int(stats.group(1)), int(stats.group(2))


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--iterations", type=int, default=5)
    p.add_argument("--interval", type=float, default=0.01)
    args = p.parse_args()
    with Cluster(n_hosts=2, trunks={"h1": 2}) as cluster:
        net = Network("t", "n", "vlan", "10.0.0.0/24", vlan=100)
        a, b = cluster.container("a"), cluster.container("b")
        cluster.apply(DesiredState(networks=(net,), hosts=tuple(Host(h.name, h.vtep_ip) for h in cluster.hosts),
                                   revision=1, endpoints=(Endpoint("a", "t", "n", "10.0.0.1", "h1", netns=a),
                                                          Endpoint("b", "t", "n", "10.0.0.2", "h2", netns=b))))
        subprocess.run(["ip", "netns", "exec", a, "ping", "-c", "3", "-W", "1", "10.0.0.2"], check=True,
                       capture_output=True)
        first = cluster.hosts[0].trunk_root_ends[0]
        gaps: dict[str, list[float]] = {"failover (active link down)": [], "failback (first link up again)": []}
        for _ in range(args.iterations):
            for label, state in zip(gaps, ("down", "up"), strict=True):
                sent, received = lost_during(a, "10.0.0.2", args.interval, ["ip", "link", "set", first, state])
                gaps[label].append((sent - received) * args.interval * 1000)
        for label, values in gaps.items():
            print(f"{label:<34} gap p50 {statistics.median(values):6.0f} ms, max {max(values):6.0f} ms "
                  f"({len(values)} runs, ping every {args.interval * 1000:.0f} ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
