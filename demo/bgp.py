"""The L3 mode walkthrough (``scripts/demo --bgp``): two hosts peer with an FRR ToR over BGP.

Netmaster (SQLite) and two simulated hosts with agents in routing fwdMode, an FRR ToR on their uplink
segment with a server behind it (testbed.bgp_cluster). Narrated: netctl sets routing mode, creates a
VLAN network and a Bgp object per host; a container starts on each host; the ToR's routing table shows
their /32s, learned over BGP; the containers ping each other and the server through those routes;
``netctl bgp inspect`` shows the live state; h1's Bgp object is removed (its traffic stops) and
restored (it returns). Each traffic check is narrated ``<src> -> <dst> ping  reached|unreachable  as
expected`` (or UNEXPECTED, and the demo exits 1). Torn down at the end.
"""

from __future__ import annotations

import json
import sys
import time

from demo.basic import BOLD, RESET, netctl
from testbed.bgp_cluster import BgpCluster
from testbed.netcheck import ping
from testbed.sync_cluster import add_endpoint
from testbed.tor import TOR_AS, host_router_ip
from testbed.waiting import eventually

SESSION = 40.0  # gobgpd's first connection waits 5-10 s; the ToR (bgp listen range) is passive


def _step(title: str) -> None:
    print(f"{BOLD}## {title}{RESET}")


def _check(ok: bool, src: str, dst: str, expected: bool) -> bool:
    outcome = "reached" if ok else "unreachable"
    mark = "as expected" if ok == expected else "UNEXPECTED"
    print(f"  {src} -> {dst} ping  {outcome:<11}  {mark}")
    return ok == expected


def _reach(ns: str, ip: str, expected: bool, timeout: float) -> bool:
    """Wait (up to *timeout*) for the expected outcome, then report whether ping reaches *ip*."""
    try:
        eventually(lambda: ping(ns, ip) == expected, timeout, f"ping {ip} {'reached' if expected else 'lost'}")
    except TimeoutError:
        pass
    return ping(ns, ip, count=2)


def run() -> int:
    good = True
    with BgpCluster(n_hosts=2, n_tors=1) as cluster:
        url = cluster.netmaster_url
        tor = cluster.tors[0]
        h1, h2 = cluster.hosts
        print(f"simulated cluster prefix {cluster.prefix}: netmaster {url}, hosts h1 h2, ToR {tor.ip} "
              f"(FRR, AS {TOR_AS}, namespace {tor.ns}), server {tor.server_ip} behind it\n")
        _step("Routing mode, and a VLAN network: no tunnels, no static routes")
        netctl(url, "global set --fwd-mode routing")
        netctl(url, "net create -e vlan -s 10.60.0.0/24 -g 10.60.0.254 web")
        _step("A Bgp object per host: router IP on the uplink segment, own AS, the ToR as neighbour")
        for i, host in enumerate(cluster.hosts, start=1):
            netctl(url, f"bgp create --router-ip {host_router_ip(i)} --as {65000 + i} --neighbor-as {TOR_AS} "
                        f"--neighbor {tor.ip} {host.name}")
        netctl(url, "bgp ls")
        eventually(lambda: tor.established() == ["50.1.1.1", "50.1.1.2"], SESSION, "both sessions")
        print(f"the ToR's sessions: {', '.join(tor.established())} Established\n")
        _step("A container on each host: each announces its address as a /32")
        ips = {}
        for name, host in (("a", h1), ("b", h2)):
            ns = cluster.container(name)
            status, rec = add_endpoint(host, endpoint_id=name, tenant="default", network="web", netns=ns)
            if status != 200:
                print(f"endpoint {name}: {rec}")
                return 1
            ips[name] = (ns, rec["ip"])
            print(f"  container {name} on {host.name}: {rec['ip']}")
        eventually(lambda: all(f"{ip}/32" in tor.kernel_routes() for _, ip in ips.values()), 20, "the /32s")
        print(f"\n{BOLD}$ vtysh -c 'show ip route bgp'   (in the ToR){RESET}")
        print(tor.vtysh("show ip route bgp").split("\n\n", 1)[-1].strip() + "\n")
        (a, a_ip), (b, b_ip) = ips["a"], ips["b"]
        _step("Traffic between the hosts and to the server, through the learned routes")
        good &= _check(_reach(a, b_ip, True, 20), "a", "b", True)
        good &= _check(_reach(b, a_ip, True, 20), "b", "a", True)
        good &= _check(_reach(a, tor.server_ip, True, 20), "a", "server", True)
        _step("The live BGP state of h1, from its gobgpd through netmaster")
        print(f"{BOLD}$ netctl bgp inspect h1   (its Oper; the neighbours' details left out){RESET}")
        oper = cluster.nm.ok(cluster.nm.http.get("/api/v1/inspect/Bgps/h1/"))["Oper"]
        print(json.dumps({k: oper[k] for k in ("neighborStatus", "adminStatus", "numRoutes", "routes")}, indent=1))
        print()
        _step("Remove h1's peering: its routes are withdrawn and its container is cut off")
        netctl(url, "bgp rm h1")
        good &= _check(_reach(a, b_ip, False, 30), "a", "b", False)
        good &= _check(_reach(a, tor.server_ip, False, 30), "a", "server", False)
        _step("Restore it: the session comes back (gobgpd connects within 5-10 s), and so does the traffic")
        started = time.monotonic()
        netctl(url, f"bgp create --router-ip {host_router_ip(1)} --as 65001 --neighbor-as {TOR_AS} "
                    f"--neighbor {tor.ip} h1")
        good &= _check(_reach(a, b_ip, True, SESSION + 20), "a", "b", True)
        good &= _check(_reach(a, tor.server_ip, True, 20), "a", "server", True)
        print(f"  (back after {time.monotonic() - started:.1f} s)\n")
    print(f"{BOLD}Done.{RESET} Everything was torn down." if good else "Some checks were UNEXPECTED.")
    return 0 if good else 1


if __name__ == "__main__":
    sys.exit(run())
