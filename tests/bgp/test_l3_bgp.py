"""L3 mode with BGP, end to end: real gobgpd per host driven by the agent, real FRR ToRs, real packets.

Two hosts in routing fwdMode on one VLAN network, two ToRs on the uplink segment (each with its own
"external" network; a server behind the first). No tunnels and no static routes: every path between
the hosts' containers, and to the server, is a route learned over BGP.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator

import pytest

from testbed.bgp_cluster import BgpCluster, missing_bgp_prerequisites
from testbed.cluster.prereq import requires, running
from testbed.lbcheck import NameServer, connect
from testbed.netcheck import Pinger, ping
from testbed.sync_cluster import add_endpoint, delete_endpoint, wait_revision
from testbed.tor import Tor
from testbed.waiting import eventually

pytestmark = [pytest.mark.slow, requires(missing_bgp_prerequisites())]

# gobgpd's first connect waits 5-10 s (its fixed retry interval; after a session failure 5 s idle first);
# the ToR is passive. Generous: CI is a loaded machine.
SESSION = 60.0
HOLD = 9.0


@pytest.fixture(scope="module")
def cluster() -> Iterator[BgpCluster]:
    c = BgpCluster(n_hosts=2, n_tors=2)
    for ready in running(c):
        c.routing_mode()
        c.nm.tenant_with_network("t", "vlan", "10.60.0.0/24", gateway="10.60.0.254")
        for host in c.hosts:
            wait_revision(c, c.peer(host))
        for tor in c.tors:
            _both_established(tor)
        yield ready


def _both_established(tor: Tor) -> None:
    """Both hosts in session with *tor*; on a timeout the ToR's view of its peers is in the message."""
    try:
        eventually(lambda: tor.established() == ["50.1.1.1", "50.1.1.2"], SESSION, f"both hosts on {tor.ns}")
    except TimeoutError as exc:
        raise TimeoutError(f"{exc}: {tor.peers()}") from None


def _bgp(cluster: BgpCluster, i: int) -> dict:
    status, info = cluster.hosts[i].get("/inspect/bgp")
    assert status == 200, info
    return info


def _installed(cluster: BgpCluster, i: int) -> set[str]:
    return {r["prefix"] for r in _bgp(cluster, i)["installed"]}


@pytest.fixture
def pair(cluster: BgpCluster) -> Iterator[tuple[str, str, str, str]]:
    """Container a on h1 and b on h2: (a's namespace, a's IP, b's namespace, b's IP)."""
    h1, h2 = cluster.hosts
    name = f"{time.monotonic_ns() % 100000}"
    a, b = cluster.container(f"a{name}"), cluster.container(f"b{name}")
    status, ra = add_endpoint(h1, endpoint_id=f"a{name}", tenant="t", network="net", netns=a)
    assert status == 200, ra
    status, rb = add_endpoint(h2, endpoint_id=f"b{name}", tenant="t", network="net", netns=b)
    assert status == 200, rb
    yield a, ra["ip"], b, rb["ip"]
    delete_endpoint(h1, f"a{name}")
    delete_endpoint(h2, f"b{name}")
    cluster.remove_container(a)
    cluster.remove_container(b)


def _only_remote(cluster: BgpCluster, i: int, ips: list[str]) -> bool:
    """Host i installs the /32s of the other host's endpoints (its own are local, not learned)."""
    mine = {ep["ip"] for ep in cluster.hosts[i].get("/inspect/driver")[1].get("endpoints", [])}
    return all(f"{ip}/32" in _installed(cluster, i) for ip in ips if ip not in mine)


def test_endpoints_announced_learned_and_withdrawn(cluster: BgpCluster,
                                                   pair: tuple[str, str, str, str]) -> None:
    a, a_ip, b, b_ip = pair
    tor = cluster.tors[0]
    routes = eventually(lambda: (r := tor.kernel_routes()) and f"{a_ip}/32" in r and f"{b_ip}/32" in r and r,
                        20, "both /32s in the ToR's kernel table")
    assert routes[f"{a_ip}/32"] == "50.1.1.1"
    assert routes[f"{b_ip}/32"] == "50.1.1.2"
    eventually(lambda: _only_remote(cluster, 0, [b_ip]) and _only_remote(cluster, 1, [a_ip]), 20,
               "each host installed the other's /32")
    eventually(lambda: f"{tor.external_net}.0/24" in _installed(cluster, 0), 20, "the external prefix on h1")
    metrics = eventually(lambda: (m := cluster.hosts[0].get("/metrics")[1])
                         and "contiv_agent_bgp_neighbors_established 2.0" in m and m, 20, "BGP metrics")
    assert "contiv_agent_bgp_neighbors 2.0" in metrics
    assert "contiv_agent_bgp_announced_routes 1.0" in metrics
    assert ping(a, b_ip, count=3)
    assert ping(b, a_ip, count=3)
    assert ping(a, tor.server_ip, count=3), "the server behind the ToR, through the learned route"
    # the flows: h1 has no direct route to b (only the learned one), and answers b's ARP with the router MAC
    flows = cluster.hosts[0].get("/inspect/driver?flows=1")[1]["flows"]
    l3 = "\n".join(flows["l3_forwarding"])
    assert f"nw_dst={b_ip}," in l3
    assert "02:fe:32:01:01:01" in l3

    # endpoint delete -> withdrawn from the ToR and from h2's flows
    extra = cluster.container(f"x{time.monotonic_ns() % 100000}")
    status, rx = add_endpoint(cluster.hosts[0], endpoint_id=extra, tenant="t", network="net", netns=extra)
    assert status == 200, rx
    eventually(lambda: f"{rx['ip']}/32" in tor.kernel_routes(), 20, "the new endpoint's /32 at the ToR")
    assert delete_endpoint(cluster.hosts[0], extra)[0] == 200
    cluster.remove_container(extra)
    eventually(lambda: f"{rx['ip']}/32" not in tor.kernel_routes(), 20, "the deleted endpoint's /32 withdrawn")
    eventually(lambda: f"{rx['ip']}/32" not in _installed(cluster, 1), 20, "and gone from h2's routes")


def test_removing_the_peer_stops_traffic_and_restoring_brings_it_back(
        cluster: BgpCluster, pair: tuple[str, str, str, str]) -> None:
    a, a_ip, b, b_ip = pair
    h1 = cluster.hosts[0]
    server = cluster.tors[0].server_ip
    eventually(lambda: ping(a, b_ip) and ping(a, server), 30, "traffic before")
    wait_revision(cluster, cluster.unpeer(h1))
    for tor in cluster.tors:
        eventually(lambda tor=tor: f"{a_ip}/32" not in tor.kernel_routes(), 20, f"a's /32 gone from {tor.ns}")
    eventually(lambda: not _installed(cluster, 0), 20, "h1's learned routes removed")
    eventually(lambda: not ping(a, b_ip) and not ping(a, server), 20, "traffic stopped without the peer")
    assert not ping(b, a_ip, count=2), "nor from the other host: nothing routes to a without BGP"
    wait_revision(cluster, cluster.peer(h1))
    eventually(lambda: ping(a, b_ip) and ping(a, server) and ping(b, a_ip), SESSION + 20, "traffic back")


def test_agent_sigkill_keeps_the_sessions_and_the_traffic(cluster: BgpCluster,
                                                          pair: tuple[str, str, str, str]) -> None:
    a, _, _, b_ip = pair
    h1 = cluster.hosts[0]
    tor = cluster.tors[0]
    eventually(lambda: ping(a, b_ip) and ping(a, tor.server_ip), 30, "traffic before")
    before = tor.peers()["50.1.1.1"]
    established = {t.ip: "established" for t in cluster.tors}
    eventually(lambda: cluster.nm.ok(cluster.nm.http.get("/api/v1/agents/h1/")).get("bgp") == established, 20,
               "the neighbours' states in h1's agent record (sent with each heartbeat)")
    pinger = Pinger(a, b_ip)
    time.sleep(0.5)
    cluster.kill_agent(h1)
    # while no agent answers, netctl bgp inspect falls back to the agent record's neighbour states
    oper = cluster.nm.ok(cluster.nm.http.get("/api/v1/inspect/Bgps/h1/"))["Oper"]
    assert oper["source"] == "agent record"
    assert oper["neighborStatus"] == "Established"
    assert "unreachable" in oper["error"]
    cluster.start_agent(h1)
    eventually(lambda: _bgp(cluster, 0)["state"] == "running" and _only_remote(cluster, 0, [b_ip]), 20,
               "the new agent adopted gobgpd")
    time.sleep(1.0)
    result = pinger.stop()
    after = tor.peers()["50.1.1.1"]
    assert after["state"] == "Established"
    assert after["peerUptimeMsec"] > before["peerUptimeMsec"], f"the session was reset: {before} -> {after}"
    assert result.lost == 0, f"{result.lost} of {max(result.replies)} pings lost across the agent restart"
    assert ping(a, tor.server_ip, count=2)


def test_a_dead_gobgpd_is_started_again(cluster: BgpCluster, pair: tuple[str, str, str, str]) -> None:
    a, a_ip, b, b_ip = pair
    eventually(lambda: ping(b, a_ip), 30, "traffic before")
    pid = _bgp(cluster, 0)["daemon_pid"]
    os.kill(pid, signal.SIGKILL)
    eventually(lambda: _bgp(cluster, 0)["daemon_pid"] not in (pid, None) and _bgp(cluster, 0)["state"] == "running",
               30, "a new gobgpd on h1")
    eventually(lambda: f"{a_ip}/32" in cluster.tors[0].kernel_routes() and ping(b, a_ip) and ping(a, b_ip),
               SESSION + 20, "sessions, routes and traffic back")


def test_tor_restart_routes_come_back(cluster: BgpCluster, pair: tuple[str, str, str, str]) -> None:
    a, a_ip, _, _ = pair
    tor = cluster.tors[0]
    eventually(lambda: f"{a_ip}/32" in tor.kernel_routes() and ping(a, tor.server_ip), 30, "before")
    tor.kill()
    eventually(lambda: f"{tor.external_net}.0/24" not in _installed(cluster, 0), HOLD + 20,
               "the dead ToR's prefix withdrawn within the hold time")
    assert not ping(a, tor.server_ip, count=2)
    assert cluster.agent_log(cluster.hosts[0]).count("Traceback") == 0
    tor.start()
    _both_established(tor)
    eventually(lambda: f"{a_ip}/32" in tor.kernel_routes(), 20, "a's /32 back in the restarted ToR")
    eventually(lambda: ping(a, tor.server_ip), 20, "the server reachable again")


def test_one_tor_goes_away_traffic_continues(cluster: BgpCluster, pair: tuple[str, str, str, str]) -> None:
    """Both neighbours up; the ToRs set themselves as next hop, so host-to-host traffic crosses one of
    them, and each host learns the other's /32 from both: losing one ToR leaves the other path."""
    a, _, _b, b_ip = pair
    first, second = cluster.tors
    for i in (0, 1):
        peers = {n["address"]: n["state"] for n in _bgp(cluster, i)["neighbors"]}
        assert peers == {first.ip: "established", second.ip: "established"}, peers
    eventually(lambda: ping(a, b_ip) and ping(a, second.server_ip), 30, "traffic before")
    first.kill()
    try:
        eventually(lambda: first.ip not in {r["peer"] for r in _bgp(cluster, 0)["routes"]}, HOLD + 20,
                   "h1 dropped the first ToR's routes")
        eventually(lambda: ping(a, b_ip) and ping(a, second.server_ip), 20, "traffic through the second ToR")
        states = {n["address"]: n["state"] for n in _bgp(cluster, 0)["neighbors"]}
        assert states[second.ip] == "established", states
        assert states[first.ip] != "established", states
    finally:
        first.start()
        _both_established(first)


def test_a_peer_that_never_comes_up_shows_in_inspect(cluster: BgpCluster, pair: tuple[str, str, str, str]) -> None:
    a, _, _, b_ip = pair
    h2 = cluster.hosts[1]
    config = cluster.bgp_config(h2)
    wait_revision(cluster, cluster.peer(h2, neighbor=config["neighbor"] + ",50.1.1.99"))
    try:
        ghost = eventually(lambda: next((n for n in _bgp(cluster, 1)["neighbors"] if n["address"] == "50.1.1.99"
                                         and n.get("asn")), None), 20, "the unreachable neighbour listed")
        assert ghost["state"] != "established"
        assert ghost["uptime"] == 0
        assert _bgp(cluster, 1)["error"] == ""
        assert ping(a, b_ip, count=2), "the other neighbours still carry the traffic"
        assert cluster.hosts[1].agent is not None
        assert cluster.hosts[1].agent.poll() is None
    finally:
        wait_revision(cluster, cluster.peer(h2))


def test_netctl_bgp_inspect_shows_live_state(cluster: BgpCluster, pair: tuple[str, str, str, str]) -> None:
    _, a_ip, _, b_ip = pair
    assert cluster.netmaster is not None
    eventually(lambda: _only_remote(cluster, 0, [b_ip]), 20, "b's route on h1")

    def inspect() -> dict:
        out = subprocess.run(["netctl", "--netmaster", cluster.netmaster_url, "bgp", "inspect", "h1"],
                             capture_output=True, text=True, timeout=30, check=True)
        return json.loads(out.stdout)

    got = eventually(lambda: (d := inspect())["Oper"].get("neighborStatus") == "Established" and d, 20,
                     "neighborStatus Established")
    oper = got["Oper"]
    assert got["Config"]["routerip"] == "50.1.1.1/24"
    prefixes = {r["prefix"] for r in oper["routes"]}
    assert {f"{a_ip}/32", f"{b_ip}/32", "172.30.1.0/24", "172.30.2.0/24"} <= prefixes
    assert oper["numRoutes"] == len(oper["routes"])
    assert {n["address"] for n in oper["neighbors"]} == {t.ip for t in cluster.tors}
    assert all(n["prefixes"]["received"] > 0 for n in oper["neighbors"])



def _next_hops(cluster: BgpCluster, i: int, prefix: str) -> set[str]:
    return {r["next_hop"] for r in _bgp(cluster, i)["installed"] if r["prefix"] == prefix}


def _routed_by_each(cluster: BgpCluster, src: str, src_ip: str, dst_ip: str, n: int,
                    proto: str = "tcp") -> dict[str, int]:
    """*n* TCP connections (or UDP exchanges, each from its own source port) from *src* to the name
    server on *dst_ip*, all answered: how many of *src_ip*'s packets each ToR routed meanwhile."""
    before = {t.ns: t.forwarded(src_ip) for t in cluster.tors}
    counts, failed = connect(src, dst_ip, ECMP_PORT, proto, n)
    assert failed == 0, counts
    assert sum(counts.values()) == n, counts
    return {t.ns: t.forwarded(src_ip) - before[t.ns] for t in cluster.tors}


ECMP_PORT = 7070


def test_ecmp_spreads_connections_over_both_tors_and_survives_one(cluster: BgpCluster,
                                                                   pair: tuple[str, str, str, str]) -> None:
    """b's /32 and the shared external network come from both ToRs at equal cost: h1 installs each with
    both next hops (one select group, a bucket per ToR); 100 TCP connections from a to b, and 100 to the
    external server, are spread over both ToRs (counted by each ToR's kernel), and so are 100 UDP
    exchanges from as many source ports (UDP goes by multipath, not the group); with one ToR killed its
    bucket goes and every connection passes through the other."""
    a, a_ip, b, b_ip = pair
    first, second = cluster.tors
    assert cluster.shared is not None
    external = f"{cluster.shared.server_ip.rsplit('.', 1)[0]}.0/24"
    dests = {f"{b_ip}/32": (b, b_ip), external: (cluster.shared.ns, cluster.shared.server_ip)}
    for prefix in dests:
        eventually(lambda prefix=prefix: _next_hops(cluster, 0, prefix) == {first.ip, second.ip}, 30,
                   f"{prefix} installed on h1 through both ToRs")
    h1 = cluster.hosts[0]
    groups = eventually(lambda: (g := h1.ovs.run("ovs-ofctl", "-O", "OpenFlow13", "dump-groups", h1.bridge))
                        and "type=select" in g and g, 20, "the ECMP select group on h1's bridge")
    assert groups.count("group_id=") == 1, f"one next-hop set, one group: {groups}"
    assert groups.count("bucket=") == 2, groups
    servers = [NameServer(ns, ns, ECMP_PORT, cluster.root) for ns, _ in dests.values()]
    try:
        for prefix, (_, ip) in dests.items():
            eventually(lambda ip=ip: connect(a, ip, ECMP_PORT, "tcp", 1)[1] == 0, 20, f"a reaches {ip}")
            share = _routed_by_each(cluster, a, a_ip, ip, 100)
            total = sum(share.values())
            assert total >= 100 * 4, f"a's packets to {ip} routed by the ToRs: {share}"
            assert all(n >= total * 0.15 for n in share.values()), f"{prefix}: not spread over both ToRs: {share}"
            print(f"ECMP {prefix}: a's packets per ToR: {share}")
        udp = _routed_by_each(cluster, a, a_ip, b_ip, 100, "udp")
        assert all(n >= sum(udp.values()) * 0.15 for n in udp.values()), f"UDP not spread over both ToRs: {udp}"
        print(f"ECMP UDP to b: a's packets per ToR: {udp}")

        first.kill()
        try:
            for prefix, (_, ip) in dests.items():
                eventually(lambda prefix=prefix: _next_hops(cluster, 0, prefix) == {second.ip}, HOLD + 20,
                           f"{prefix}: the dead ToR's bucket removed")
                eventually(lambda ip=ip: connect(a, ip, ECMP_PORT, "tcp", 20, wait=2.0)[1] == 0, 30,
                           f"every connection to {ip} through the remaining ToR")
                share = _routed_by_each(cluster, a, a_ip, ip, 50)
                assert share[first.ns] == 0, f"nothing through the dead ToR: {share}"
                assert share[second.ns] >= 50 * 4, f"all through the second ToR: {share}"
            udp = _routed_by_each(cluster, a, a_ip, b_ip, 50, "udp")
            assert udp[first.ns] == 0, f"no UDP through the dead ToR: {udp}"
        finally:
            first.start()
            _both_established(first)
        eventually(lambda: _next_hops(cluster, 0, f"{b_ip}/32") == {first.ip, second.ip}, 30,
                   "the restarted ToR's bucket back")
    finally:
        for server in servers:
            server.stop()


def test_announce_subnets_from_the_hosts_holding_endpoints(cluster: BgpCluster,
                                                          pair: tuple[str, str, str, str]) -> None:
    """``announce-subnets``: h1 also announces the subnet of each network it holds an endpoint of, and
    withdraws it with the network's last local endpoint; h2, without the option, announces /32s only."""
    _, a_ip, _, b_ip = pair
    h1 = cluster.hosts[0]
    tor = cluster.tors[0]
    wait_revision(cluster, cluster.nm.post("networks", "t:net2", tenantName="t", networkName="net2",
                                           encap="vlan", subnet="10.61.0.0/24", gateway="10.61.0.254"))
    wait_revision(cluster, cluster.peer(h1, **{"announce-subnets": "yes"}))
    ns = cluster.container(f"s{time.monotonic_ns() % 100000}")
    try:
        eventually(lambda: tor.kernel_routes().get("10.60.0.0/24") == "50.1.1.1", 20,
                   "net's subnet at the ToR from h1 (a is there)")
        assert "10.61.0.0/24" not in tor.kernel_routes(), "no endpoint of net2 on h1 yet"
        status, rs = add_endpoint(h1, endpoint_id=ns, tenant="t", network="net2", netns=ns)
        assert status == 200, rs
        eventually(lambda: tor.kernel_routes().get("10.61.0.0/24") == "50.1.1.1", 20, "net2's subnet announced")
        routes = tor.kernel_routes()
        assert routes[f"{a_ip}/32"] == "50.1.1.1", "the /32s still announced"
        assert routes[f"{b_ip}/32"] == "50.1.1.2"
        assert delete_endpoint(h1, ns)[0] == 200
        eventually(lambda: "10.61.0.0/24" not in tor.kernel_routes(), 20, "withdrawn with its last endpoint")
        assert tor.kernel_routes().get("10.60.0.0/24") == "50.1.1.1", "net still has a on h1"
        assert not any(r["prefix"].endswith("/24") and not r["peer"] for r in _bgp(cluster, 1)["routes"]), \
            "h2 announces no subnet"
    finally:
        delete_endpoint(h1, ns)
        cluster.remove_container(ns)
        wait_revision(cluster, cluster.peer(h1))
        wait_revision(cluster, cluster.nm.delete("networks", "t:net2"))
    eventually(lambda: "10.60.0.0/24" not in tor.kernel_routes(), 20, "the option off: subnets withdrawn")


def test_a_failed_add_takes_its_early_announcement_back(cluster: BgpCluster, pair: tuple[str, str, str, str]) -> None:
    """An endpoint's /32 is announced as soon as netmaster allocated it (before its veth, port and
    flows); an add that then fails (the container already has an eth0) withdraws it at once (without
    the withdrawal it would stay announced for a minute)."""
    h1 = cluster.hosts[0]
    eventually(lambda: len(_bgp(cluster, 0)["announced"]) == 1, 20, "a's /32 announced")
    before = _bgp(cluster, 0)["announced"]
    ns = cluster.container(f"f{time.monotonic_ns() % 100000}")
    try:
        subprocess.run(["ip", "-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0p"], check=True)
        status, out = add_endpoint(h1, endpoint_id="clash", tenant="t", network="net", netns=ns)
        assert status != 200, out
        assert "add failed" in cluster.agent_log(h1), "it failed after netmaster's allocation"
        eventually(lambda: _bgp(cluster, 0)["announced"] == before, 20, "nothing left announced by the failed add")
    finally:
        cluster.remove_container(ns)
    assert f"{pair[1]}/32" in cluster.tors[0].kernel_routes()
