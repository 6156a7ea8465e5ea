"""Service load balancing benchmark: flows per service, new connections/s through a VIP against
direct connections to the providers, in the same run.

    python bench/services.py [--connections 300] [--rounds 3] [--skip-cluster] [--skip-dns]
                             [--skip-connections] [--profile FILE]

Prints figures; asserts nothing about time (numbers belong in docs/performance.md, not in tests).

- flows per service: the pipeline built for one service (one TCP and one UDP port, 3 providers) with
  2, 20 and 200 client endpoints on the host: the service's flows and groups, which should not grow
  with the clients;
- connections/s: a two-host simulated cluster (VXLAN; prefix ``ag``, removed at the end), 3 providers
  (2 on h1, 1 on h2) and a client on h1. Each round makes N TCP connections (connect, one request,
  its answer, close; one after the other) through the VIP, then N straight to the providers' own
  addresses (N/3 each, the same mix of hosts the VIP spreads over); the ratio VIP/direct is the
  figure. Inside a round the order alternates, so load on the machine hits both alike.
- DNS (agents with ``--dns``, one host): dnsperf (Debian's ``dnsperf``) from a container, asking the
  gateway (redirected by flows to the agent's responder) for the tenant's names: the most queries/s
  (5 s, 20 outstanding), then latency at a fixed 1,000 q/s (p50, p99 from dnsperf's per-query
  report); the reference in the same run is the same responder asked directly from the host's
  namespace (no redirect: its own address), so the ratio is what the flows cost.
  ``--profile FILE`` writes py-spy's raw stacks of the agent (every thread, idle included) during
  the first round's throughput run: where a query's time goes.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from agent.ovs.flow import Feature  # noqa: E402
from agent.pipeline import build, service_lb  # noqa: E402
from agent.pipeline.view import DatapathView  # noqa: E402
from agent.state import DesiredState, Endpoint, EndpointGroup, Host, Network, Service, ServicePort  # noqa: E402

NET = Network("t1", "net", "vxlan", "10.95.0.0/16", vni=9500)
VIP = "10.95.0.100"
PORTS = (ServicePort(80, 8080, "tcp"), ServicePort(81, 8080, "udp"))
PROVIDERS = {"p1": ("10.95.0.11", "h1"), "p2": ("10.95.0.12", "h2"), "p3": ("10.95.0.13", "h1")}


def flows_per_service(clients: int) -> tuple[int, int]:
    """(service flows, select groups) on h1 for one service with *clients* local clients."""
    eps = [Endpoint(n, "t1", "net", ip, host) for n, (ip, host) in PROVIDERS.items()]
    eps += [Endpoint(f"c{i}", "t1", "net", f"10.95.{1 + i // 250}.{i % 250 + 1}", "h1") for i in range(clients)]
    state = DesiredState(networks=(NET,), endpoints=tuple(eps),
                         hosts=(Host("h1", "192.0.2.1"), Host("h2", "192.0.2.2")),
                         services=(Service("t1", "web", VIP, PORTS, tuple(PROVIDERS)),))
    ports = {ep.id: 16 + i for i, ep in enumerate(e for e in eps if e.host == "h1")}
    view = DatapathView(state, "h1", {"t1": 1}, ports, has_tunnel=True)
    return sum(1 for f in build(view) if f.feature == Feature.SERVICE), len(service_lb.groups(view))


def connection_rates(n: int, rounds: int) -> list[tuple[float, float]]:
    from testbed.cluster import Cluster
    from testbed.lbcheck import NameServer, connect_timed

    out = []
    with Cluster(n_hosts=2) as cluster, tempfile.TemporaryDirectory() as tmp:
        hosts = [h.name for h in cluster.hosts]
        spaces = {name: cluster.container(name) for name in (*PROVIDERS, "c")}
        eps = [Endpoint(n_, "t1", "net", ip, host, netns=spaces[n_]) for n_, (ip, host) in PROVIDERS.items()]
        eps.append(Endpoint("c", "t1", "net", "10.95.0.21", hosts[0], netns=spaces["c"]))
        state = DesiredState(networks=(NET,), endpoints=tuple(eps),
                             hosts=tuple(Host(h.name, h.vtep_ip) for h in cluster.hosts),
                             services=(Service("t1", "web", VIP, PORTS, tuple(PROVIDERS)),), revision=1)
        cluster.apply(state)
        servers = [NameServer(spaces[name], name, 8080, Path(tmp)) for name in PROVIDERS]
        try:
            connect_timed(spaces["c"], VIP, 80, "tcp", 30)  # warm up both paths: ARP, megaflows
            for ip, _ in PROVIDERS.values():
                connect_timed(spaces["c"], ip, 8080, "tcp", 10)
            for i in range(rounds):
                def via_vip() -> dict:
                    return connect_timed(spaces["c"], VIP, 80, "tcp", n)

                def straight() -> list[dict]:
                    return [connect_timed(spaces["c"], ip, 8080, "tcp", n // 3) for ip, _ in PROVIDERS.values()]

                if i % 2:  # alternate which goes first
                    direct = straight()
                    vip = via_vip()
                else:
                    vip = via_vip()
                    direct = straight()
                failed = vip["failed"] + sum(d["failed"] for d in direct)
                if failed:
                    print(f"  ({failed} connections failed in this round)")
                vip_rate = (n - vip["failed"]) / vip["seconds"]
                done = sum(n // 3 - d["failed"] for d in direct)
                direct_rate = done / sum(d["seconds"] for d in direct)
                print(f"  round: VIP {vip_rate:7.0f} conn/s   direct {direct_rate:7.0f} conn/s   "
                      f"ratio {vip_rate / direct_rate:.2f}   spread {dict(vip['counts'])}")
                out.append((vip_rate, direct_rate))
        finally:
            for server in servers:
                server.stop()
    return out


def _dnsperf(ns: str, server: str, names: Path, *args: str) -> str:
    import subprocess

    return subprocess.run(["ip", "netns", "exec", ns, "dnsperf", "-s", server, "-d", str(names), *args],
                          capture_output=True, text=True, timeout=120, check=True).stdout


def _qps(report: str) -> float:
    return float(next(line.split(":")[1].split()[0] for line in report.splitlines() if "Queries per second" in line))


def _latencies(report: str) -> list[float]:
    """Per-query latencies (s) from dnsperf -v lines: ``> NOERROR name A 0.000263``."""
    return sorted(float(line.split()[-1]) for line in report.splitlines() if line.startswith("> NOERROR"))


def dns_rates(rounds: int, profile: str = "") -> list[dict[str, float]]:
    import subprocess

    from testbed.cluster import Cluster

    out = []
    with Cluster(n_hosts=1) as cluster, tempfile.TemporaryDirectory() as tmp:
        host = cluster.hosts[0]
        cluster.kill_agent(host)
        cluster.start_agent(host, ("--dns", "--dns-upstream", "127.0.0.1:5300"))
        spaces = {name: cluster.container(name) for name in (*PROVIDERS, "c")}
        eps = [Endpoint(n_, "t1", "net", ip, host.name, netns=spaces[n_], name=f"web-{n_}", group="web")
               for n_, (ip, _) in PROVIDERS.items()]
        eps.append(Endpoint("c", "t1", "net", "10.95.0.21", host.name, netns=spaces["c"], name="client"))
        net = Network("t1", "net", "vxlan", "10.95.0.0/16", vni=9500, gateway="10.95.255.254")
        cluster.apply(DesiredState(networks=(net,), endpoints=tuple(eps),
                                   groups=(EndpointGroup("t1", "web", 7, "net"),),
                                   hosts=(Host(host.name, host.vtep_ip),), revision=1,
                                   services=(Service("t1", "www", VIP, PORTS, tuple(PROVIDERS)),)))
        names = Path(tmp) / "names"
        names.write_text("".join(f"{n} A\n" for n in ("www", "web-p1", "web-p2", "client", "web", "www.t1.contiv")))
        spy = None
        if profile and host.agent is not None:  # the agent's stacks while dnsperf runs (first round's most q/s)
            spy = subprocess.Popen(["py-spy", "record", "--threads", "--idle", "-d", "6", "-f", "raw", "-o", profile,
                                    "-p", str(host.agent.pid)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for i in range(rounds):
            row = {}
            for how, ns, server in (("redirect", spaces["c"], net.gateway), ("direct", host.netns, "169.254.53.1")):
                row[f"{how}_qps"] = _qps(_dnsperf(ns, server, names, "-l", "5", "-q", "20"))
                lat = _latencies(_dnsperf(ns, server, names, "-l", "5", "-Q", "1000", "-v"))
                row[f"{how}_p50_ms"] = lat[len(lat) // 2] * 1000
                row[f"{how}_p99_ms"] = lat[int(len(lat) * 0.99)] * 1000
            print(f"  round {i + 1}: " + "  ".join(f"{k} {v:.0f}" if k.endswith("qps") else f"{k} {v:.2f}"
                                                    for k, v in row.items()))
            out.append(row)
        if spy is not None:
            spy.wait(30)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--connections", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--skip-cluster", action="store_true", help="only the flow counts (no OVS needed)")
    parser.add_argument("--skip-dns", action="store_true", help="no DNS figures (they need dnsperf)")
    parser.add_argument("--skip-connections", action="store_true", help="no connections/s figures")
    parser.add_argument("--profile", default="", metavar="FILE",
                        help="py-spy's raw stacks of the agent during the first DNS throughput run, into FILE")
    args = parser.parse_args()
    print("flows per service (1 TCP + 1 UDP port, 3 providers), on a host with N local clients:")
    for clients in (2, 20, 200):
        flows, groups = flows_per_service(clients)
        print(f"  {clients:4d} clients: {flows} service flows, {groups} select group(s)")
    if args.skip_cluster:
        return 0
    if not args.skip_connections:
        print(f"new TCP connections/s, {args.connections} per round, client on h1, providers on h1 (2) and h2 (1):")
        rates = connection_rates(args.connections, args.rounds)
        vip = statistics.median(r[0] for r in rates)
        direct = statistics.median(r[1] for r in rates)
        print(f"median: VIP {vip:.0f} conn/s, direct {direct:.0f} conn/s, ratio {vip / direct:.2f}")
    if not args.skip_dns:
        print("DNS with dnsperf: from a container through the redirect, and directly from the host namespace:")
        rows = dns_rates(args.rounds, args.profile)
        for key in rows[0]:
            print(f"  median {key}: {statistics.median(r[key] for r in rows):.2f}")
        ratio = statistics.median(r["redirect_qps"] / r["direct_qps"] for r in rows)
        print(f"  queries/s redirect/direct ratio: {ratio:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
