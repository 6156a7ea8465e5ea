"""Service load balancing benchmark: flows per service, new connections/s through a VIP against
direct connections to the providers, in the same run.

    python bench/services.py [--connections 300] [--rounds 3] [--skip-cluster]

Prints figures; asserts nothing about time (numbers belong in docs/performance.md, not in tests).

- flows per service: the pipeline built for one service (one TCP and one UDP port, 3 providers) with
  2, 20 and 200 client endpoints on the host: the service's flows and groups, which should not grow
  with the clients;
- connections/s: a two-host simulated cluster (VXLAN; prefix ``ag``, removed at the end), 3 providers
  (2 on h1, 1 on h2) and a client on h1. Each round makes N TCP connections (connect, one request,
  its answer, close; one after the other) through the VIP, then N straight to the providers' own
  addresses (N/3 each, the same mix of hosts the VIP spreads over); the ratio VIP/direct is the
  figure. Inside a round the order alternates, so load on the machine hits both alike.
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
from agent.state import DesiredState, Endpoint, Host, Network, Service, ServicePort  # noqa: E402

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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--connections", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--skip-cluster", action="store_true", help="only the flow counts (no OVS needed)")
    args = parser.parse_args()
    print("flows per service (1 TCP + 1 UDP port, 3 providers), on a host with N local clients:")
    for clients in (2, 20, 200):
        flows, groups = flows_per_service(clients)
        print(f"  {clients:4d} clients: {flows} service flows, {groups} select group(s)")
    if args.skip_cluster:
        return 0
    print(f"new TCP connections/s, {args.connections} per round, client on h1, providers on h1 (2) and h2 (1):")
    rates = connection_rates(args.connections, args.rounds)
    vip = statistics.median(r[0] for r in rates)
    direct = statistics.median(r[1] for r in rates)
    print(f"median: VIP {vip:.0f} conn/s, direct {direct:.0f} conn/s, ratio {vip / direct:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
