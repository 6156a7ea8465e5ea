"""L3 mode (BGP): session establishment, endpoint add -> /32 in the ToR, delete -> withdrawn.

    python bench/bgp.py [--endpoints 100]

A 2-host simulated cluster in routing fwdMode with an FRR ToR (testbed.bgp_cluster). Figures:

- session: from the POST of a host's Bgp object to the ToR's session Established, with the testbed's
  ToR (``bgp listen range``: passive, so gobgpd connects, after its fixed first-connect delay of
  5-10 s) and, as the reference in the same run, with the host also configured on the ToR as an
  explicit neighbour (the ToR connects at once);
- announce: from an endpoint add request to the agent until its /32 is in the ToR's kernel table
  (``ip monitor route`` in the ToR's namespace, timestamped as each line arrives), over N endpoints;
  and the part of it after the add call returned (the agent's add path itself excluded);
- withdraw: from the delete request until the route is gone;
- the add path's parts, from the agent's log line for each add: netmaster's answer, veth and port,
  flows (the announcement is asked for at the end of the flows);
- reference for both, same run: the same /32s added and deleted straight in the host's gobgpd with its
  own CLI (``gobgp global rib add``), i.e. the daemons' floor without the agent.

Prints figures and ratios; asserts nothing.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from testbed.bgp_cluster import BgpCluster  # noqa: E402
from testbed.cluster import in_ns  # noqa: E402
from testbed.sync_cluster import add_endpoint, delete_endpoint, wait_revision  # noqa: E402
from testbed.tor import Tor  # noqa: E402
from testbed.waiting import eventually  # noqa: E402


class RouteMonitor:
    """``ip monitor route`` in the ToR's namespace: when each /32 appeared and disappeared."""

    def __init__(self, tor: Tor) -> None:
        self.added: dict[str, float] = {}
        self.deleted: dict[str, float] = {}
        self.proc = subprocess.Popen(["ip", "netns", "exec", tor.ns, "ip", "-o", "monitor", "route"],
                                     stdout=subprocess.PIPE, text=True, bufsize=1)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            now = time.monotonic()
            m = re.match(r"^(Deleted )?(\d+\.\d+\.\d+\.\d+) ", line)
            if m and "proto bgp" in line:
                (self.deleted if m.group(1) else self.added)[m.group(2)] = now

    def wait(self, table: dict[str, float], ip: str, timeout: float = 10.0) -> float:
        deadline = time.monotonic() + timeout
        while ip not in table:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{ip}: no route change at the ToR within {timeout} s")
            time.sleep(0.001)
        return table.pop(ip)

    def stop(self) -> None:
        self.proc.kill()


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def line(name: str, values: list[float], ref: list[float] | None = None) -> str:
    p50, p99 = pct(values, 0.5) * 1000, pct(values, 0.99) * 1000
    out = f"{name:<44} p50 {p50:7.1f} ms  p99 {p99:7.1f} ms  (n={len(values)})"
    if ref:
        r50, r99 = pct(ref, 0.5) * 1000, pct(ref, 0.99) * 1000
        out += f"\n{'  reference: ' + 'gobgp CLI straight into gobgpd':<44} p50 {r50:7.1f} ms  p99 {r99:7.1f} ms" \
               f"  ratio p50 {p50 / r50:.1f}, p99 {p99 / r99:.1f}"
    return out


ADDED = re.compile(r"endpoint e\d+ added: .*\(netmaster ([\d.]+) ms; "
                   r"then veth and port ([\d.]+) ms, flows ([\d.]+) ms\)")


def add_path_parts(log: str) -> list[str]:
    """p50/p99 of each part of the agent's add path, from its 'endpoint ... added' lines."""
    parts: list[list[float]] = [[], [], []]
    for m in ADDED.finditer(log):
        for i in range(3):
            parts[i].append(float(m.group(i + 1)) / 1000)
    names = ("  add path: netmaster's answer", "  add path: veth and port", "  add path: flows")
    return [line(name, values) for name, values in zip(names, parts, strict=True) if values]


def session_time(cluster: BgpCluster, tor: Tor) -> float:
    host = cluster.hosts[1]
    eventually(lambda: "50.1.1.2" not in tor.established(), 30, "h2's session down")
    started = time.monotonic()
    cluster.peer(host)
    eventually(lambda: "50.1.1.2" in tor.established(), 60, "h2's session up", interval=0.01)
    took = time.monotonic() - started
    wait_revision(cluster, cluster.unpeer(host))
    return took


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--endpoints", type=int, default=100)
    p.add_argument("--sessions", type=int, default=3, help="session establishments measured per ToR setup")
    args = p.parse_args()
    with BgpCluster(n_hosts=2, n_tors=1) as cluster:
        tor = cluster.tors[0]
        h1 = cluster.hosts[0]
        cluster.routing_mode()
        cluster.nm.tenant_with_network("t", "vlan", "10.64.0.0/16", gateway="10.64.255.254")
        wait_revision(cluster, cluster.peer(h1))
        eventually(lambda: "50.1.1.1" in tor.established(), 60, "h1's session")

        passive = [session_time(cluster, tor) for _ in range(args.sessions)]
        tor.vtysh("conf t", f"router bgp {tor.asn}", "neighbor 50.1.1.2 remote-as 65002",
                  "neighbor 50.1.1.2 timers connect 1", "neighbor 50.1.1.2 timers 3 9",
                  "address-family ipv4 unicast", "neighbor 50.1.1.2 next-hop-self force")
        active = [session_time(cluster, tor) for _ in range(args.sessions)]
        tor.vtysh("conf t", f"router bgp {tor.asn}", "no neighbor 50.1.1.2")

        monitor = RouteMonitor(tor)
        announce, after_add, withdraw = [], [], []
        containers = [cluster.container(f"e{i}") for i in range(args.endpoints)]
        for i, ns in enumerate(containers):
            started = time.monotonic()
            status, rec = add_endpoint(h1, endpoint_id=f"e{i}", tenant="t", network="net", netns=ns)
            returned = time.monotonic()
            if status != 200:
                raise RuntimeError(rec)
            seen = monitor.wait(monitor.added, rec["ip"])
            announce.append(seen - started)
            after_add.append(seen - returned)
        ips = [ep["ip"] for ep in h1.get("/inspect/driver")[1]["endpoints"]]
        for i in range(args.endpoints):
            ip = next(e["ip"] for e in h1.get("/inspect/driver")[1]["endpoints"] if e["id"] == f"e{i}")
            started = time.monotonic()
            if delete_endpoint(h1, f"e{i}")[0] != 200:
                raise RuntimeError(f"delete e{i}")
            withdraw.append(monitor.wait(monitor.deleted, ip) - started)

        ref_add, ref_del = [], []
        for i in range(args.endpoints):
            ip = f"10.65.{i // 250}.{i % 250 + 1}"
            started = time.monotonic()
            in_ns(h1.netns, "gobgp", "global", "rib", "add", f"{ip}/32", "nexthop", "50.1.1.1", "-a", "ipv4")
            ref_add.append(monitor.wait(monitor.added, ip) - started)
            started = time.monotonic()
            in_ns(h1.netns, "gobgp", "global", "rib", "del", f"{ip}/32", "-a", "ipv4")
            ref_del.append(monitor.wait(monitor.deleted, ip) - started)
        monitor.stop()

        print(f"L3 mode (BGP), {args.endpoints} endpoints on h1, FRR ToR, {len(ips)} left after the adds "
              f"(expected {args.endpoints})")
        print(f"{'session: Bgp POST -> Established, listen range':<44} "
              + ", ".join(f"{s:.2f} s" for s in passive) + f"  (median {statistics.median(passive):.2f} s)")
        print(f"{'  reference: ToR with an explicit neighbour':<44} "
              + ", ".join(f"{s:.2f} s" for s in active) + f"  (median {statistics.median(active):.2f} s)"
              f"  ratio {statistics.median(passive) / statistics.median(active):.1f}")
        print(line("endpoint add -> /32 in the ToR's kernel", announce, ref_add))
        print(line("  of which after the add call returned", after_add))
        for text in add_path_parts(cluster.agent_log(h1)):
            print(text)
        print(line("endpoint delete -> /32 gone from the ToR", withdraw, ref_del))
    return 0


if __name__ == "__main__":
    sys.exit(main())
