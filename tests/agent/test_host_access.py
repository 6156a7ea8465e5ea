"""Host access and external SNAT with real packets (docs/host-access.md): containers of a host-access
network reach a server outside the cluster (``Cluster.outside_server``: no route back to any container
address, so an answer proves the host translated) and their host's address, the server sees the host's
address, the host reaches its containers; an ``out deny`` rule to the server blocks it whatever frame
the container crafts; the host does not carry a container into another tenant; the switch off, a
network delete and an agent restart leave nothing stale, and a restart keeps the connections."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from agent.host_kernel import FORWARD_CHAIN, SNAT_CHAIN
from agent.pipeline.tables import ROUTER_MAC
from agent.state import DesiredState, Endpoint, EndpointGroup, Network, Policy, Rule
from testbed.attacks import Case, Member, Sniffer, leaked_attempts
from testbed.cluster import OUTSIDE_SERVER_IP, SimHost, in_ns
from testbed.netcheck import ping, ping_eventually
from testbed.traffic import EchoClient, EchoServer
from testbed.waiting import eventually
from tests.agent.conftest import ClusterEnv, requires_datapath

pytestmark = requires_datapath

SERVER = OUTSIDE_SERVER_IP
GATEWAY = "10.30.0.254"
MODES = {
    "vxlan": ("bridge", Network("t1", "n", "vxlan", "10.30.0.0/24", vni=9330, gateway=GATEWAY, host_access=True)),
    "vlan": ("bridge", Network("t1", "n", "vlan", "10.30.0.0/24", vlan=330, gateway=GATEWAY, host_access=True)),
    "routing": ("routing", Network("t1", "n", "vxlan", "10.30.0.0/24", vni=9331, gateway=GATEWAY,
                                   host_access=True)),
}
OTHER_TENANT = Network("t2", "m", "vxlan", "10.31.0.0/24", vni=9332, gateway="10.31.0.254", host_access=True)


NOTHING = {"port": False, "routes": [], "main_routes": [], "lookup_rule": 0, "rules": []}  # no host access


def _host_side(host: SimHost) -> dict[str, object]:
    """What the host has for host access: the port, its routes, the agent's iptables chains."""
    link = in_ns(host.netns, "ip", "-j", "link", "show", "contivh0", check=False)
    routes = in_ns(host.netns, "ip", "-4", "route", "show", "table", "5354", "dev", "contivh0",
                   check=False).stdout.split("\n")
    nat = in_ns(host.netns, "iptables", "-w", "5", "-t", "nat", "-S").stdout
    fwd = in_ns(host.netns, "iptables", "-w", "5", "-S").stdout
    main = in_ns(host.netns, "ip", "-4", "route", "show", "dev", "contivh0", check=False).stdout.splitlines()
    lookup = [r for r in in_ns(host.netns, "ip", "-4", "rule", "show").stdout.splitlines() if "lookup 5354" in r]
    return {"port": link.returncode == 0 and json.loads(link.stdout)[0]["address"],
            "routes": sorted(r.split()[0] for r in routes if r and "proto kernel" not in r),
            # not in main: dockerd loops on a local network's pool that overlaps a main-table route
            "main_routes": sorted(r.split()[0] for r in main if "proto kernel" not in r),
            "lookup_rule": len(lookup),
            "rules": [line for line in (nat + fwd).splitlines() if "CONTIV-HOST" in line]}


def _mac(ns: str, ifname: str = "eth0") -> str:
    return json.loads(in_ns(ns, "ip", "-j", "link", "show", ifname).stdout)[0]["address"]


@pytest.mark.parametrize("mode", MODES)
def test_containers_reach_the_outside_server_as_their_host_and_their_host(env: ClusterEnv, tmp_path: Path,
                                                                          mode: str) -> None:
    fwd, net = MODES[mode]
    h1, h2 = env.cluster.hosts
    a, b = env.container("a"), env.container("b")
    env.apply(DesiredState(fwd_mode=fwd, networks=(net,), endpoints=(
        Endpoint("a", "t1", "n", "10.30.0.1", "h1", netns=a), Endpoint("b", "t1", "n", "10.30.0.2", "h2", netns=b))))
    server = env.cluster.outside_server()
    echo = EchoServer(server, 7000, tmp_path)
    try:
        for ns, ip, host in ((a, "10.30.0.1", h1), (b, "10.30.0.2", h2)):
            client = EchoClient(ns, SERVER, 7000)
            try:
                assert client.connected, f"{ns} cannot connect to the outside server"
                assert client.say("hello") == "hello"
            finally:
                client.close()
            assert ping_eventually(ns, host.vtep_ip), f"{ns} does not reach its host's address"
            assert ping_eventually(host.netns, ip), f"{host.name} does not reach its container {ip}"
        eventually(lambda: len(echo.peers()) == 2, what="both connections logged by the server")
        assert echo.peers() == [h1.vtep_ip, h2.vtep_ip], "the server must see each host's address, not a container's"
    finally:
        echo.stop()
    for host in (h1, h2):
        side = _host_side(host)
        assert side["port"] == ROUTER_MAC
        assert side["routes"] == ["10.30.0.0/24"]
        assert (side["main_routes"], side["lookup_rule"]) == ([], 1)
        assert f"-A {SNAT_CHAIN} -s 10.30.0.0/24 ! -o contivh0 -j MASQUERADE" in side["rules"]


@pytest.mark.parametrize("mode", MODES)
def test_out_deny_to_the_server_holds_against_crafted_frames(env: ClusterEnv, tmp_path: Path, mode: str) -> None:
    """x's group denies the server's address. x cannot connect, and no frame it crafts reaches the
    server: to the router MAC, to the server's own MAC, broadcast, with a's source address or MAC.
    And the host carries no container into another tenant: a's frames to tenant t2's container via the
    router MAC (the host would route them back into the switch) reach it neither."""
    fwd, net = MODES[mode]
    names = ("a", "x", "b1", "b2")
    spaces = {n: env.container(n) for n in names}
    groups = (EndpointGroup("t1", "open", 330, "n"), EndpointGroup("t1", "nosrv", 331, "n", ("p-nosrv",)))
    state = env.apply(DesiredState(
        fwd_mode=fwd, networks=(net, OTHER_TENANT), groups=groups,
        policies=(Policy("t1", "p-nosrv", (Rule("1", "out", "deny", to_ip=SERVER),)),),
        endpoints=(Endpoint("a", "t1", "n", "10.30.0.1", "h1", group="open", netns=spaces["a"]),
                   Endpoint("x", "t1", "n", "10.30.0.2", "h1", group="nosrv", netns=spaces["x"]),
                   Endpoint("b1", "t2", "m", "10.31.0.1", "h1", netns=spaces["b1"]),
                   Endpoint("b2", "t2", "m", "10.31.0.2", "h2", netns=spaces["b2"]))))
    server = env.cluster.outside_server()
    h1 = env.cluster.hosts[0]
    assert ping_eventually(spaces["a"], SERVER, 10)
    assert ping_eventually(spaces["x"], h1.vtep_ip), "x still reaches its host: only the server is denied"
    assert not ping(spaces["x"], SERVER, count=2)
    client = EchoClient(spaces["x"], SERVER, 7000, connect_timeout=3)
    client.close()
    assert not client.connected

    eps = {ep.id: ep for ep in state.endpoints}
    members = {n: Member(n, spaces[n], eps[n].ip, eps[n].mac) for n in names}
    members["srv"] = Member("srv", server, SERVER, ROUTER_MAC)  # reached through the router MAC
    sniffers = {n: Sniffer(members[n], tmp_path) for n in ("srv", "b1")}
    try:
        leaked = leaked_attempts(f"{mode}-srv", Case("x", "srv", "a", "a", ("srv",), decoy="a"), members,
                                 sniffers, gateway_mac=_mac(server))
        assert leaked == {"srv": set()}, leaked
        leaked = leaked_attempts(f"{mode}-t2", Case("a", "b1", "b2", "b2", ("b1",), decoy="x"), members, sniffers,
                                 gateway_mac=ROUTER_MAC)
        assert leaked == {"b1": set()}, leaked
    finally:
        for sniffer in sniffers.values():
            sniffer.stop()


def test_overlapping_subnets_of_two_tenants_are_refused(env: ClusterEnv) -> None:
    """One host routing table cannot serve 10.30.0.0/24 of two tenants: neither gets host access, the
    agent says why, and the host has no route to either."""
    t1 = MODES["vxlan"][1]
    t2 = replace(OTHER_TENANT, subnet=t1.subnet, gateway=t1.gateway)
    a = env.container("a")
    env.apply(DesiredState(networks=(t1, t2), endpoints=(Endpoint("a", "t1", "n", "10.30.0.1", "h1", netns=a),)))
    _, info = env.cluster.hosts[0].get("/inspect/driver")
    assert info["host_access"]["networks"] == []
    assert "overlaps host-access network(s) t2:m of another tenant" in info["host_access"]["refused"]["t1:n"]
    assert _host_side(env.cluster.hosts[0]) == NOTHING
    assert not ping(a, env.cluster.hosts[0].vtep_ip, count=2)


def test_restart_keeps_connections_and_switch_off_and_delete_leave_nothing(env: ClusterEnv, tmp_path: Path) -> None:
    net = MODES["vxlan"][1]
    h1 = env.cluster.hosts[0]
    a = env.container("a")
    state = env.apply(DesiredState(networks=(net,), endpoints=(Endpoint("a", "t1", "n", "10.30.0.1", "h1", netns=a),)))
    echo = EchoServer(env.cluster.outside_server(), 7001, tmp_path)
    client = EchoClient(a, SERVER, 7001)
    try:
        assert client.connected
        assert client.say("before") == "before"
        before = _host_side(h1)
        env.cluster.kill_agent(h1)
        env.cluster.start_agent(h1)
        eventually(lambda: h1.get("/inspect/driver")[1]["host_access"]["networks"] == ["t1:n"],
                   what="the restarted agent serving the network")
        assert client.say("after restart", timeout=10) == "after restart", "the connection did not survive"
        assert _host_side(h1) == before, "a restart must neither duplicate nor drop host-side state"
        assert len(echo.peers()) == 1

        env.apply(replace(state, networks=(replace(net, host_access=False),)))
        assert _host_side(h1) == NOTHING
        assert not ping(a, SERVER, count=2)
        env.apply(replace(state, networks=(net,)))
        assert ping_eventually(a, SERVER, 10), "switched on again"
    finally:
        client.close()
        echo.stop()
    env.apply(DesiredState())  # the network and its endpoint deleted
    for host in env.cluster.hosts:
        assert _host_side(host) == NOTHING
    assert FORWARD_CHAIN not in in_ns(h1.netns, "iptables", "-w", "5", "-S").stdout


def test_the_hosts_connections_pass_the_containers_ingress_policy(env: ClusterEnv) -> None:
    """The host reaches its containers through ingress policy like anyone: an ``in deny`` group's
    member does not answer the host, an open container does; the member's own connections out still
    work (replies are established)."""
    net = MODES["vxlan"][1]
    a, x = env.container("a"), env.container("x")
    env.apply(DesiredState(
        networks=(net,), groups=(EndpointGroup("t1", "closed", 332, "n", ("p-closed",)),),
        policies=(Policy("t1", "p-closed", (Rule("1", "in", "deny"),)),),
        endpoints=(Endpoint("a", "t1", "n", "10.30.0.1", "h1", netns=a),
                   Endpoint("x", "t1", "n", "10.30.0.2", "h1", group="closed", netns=x))))
    h1 = env.cluster.hosts[0]
    env.cluster.outside_server()
    assert ping_eventually(h1.netns, "10.30.0.1")
    assert ping_eventually(x, SERVER, 10), "the closed member's own connections go out and come back"
    assert not ping(h1.netns, "10.30.0.2", count=2), "the host passed an in deny rule"


def test_the_outside_cannot_open_connections_to_containers_through_the_host(env: ClusterEnv, tmp_path: Path) -> None:
    """An underlay neighbour that routes the container subnet to the host (the server, given a route by
    hand) is not forwarded in: SNAT is for what containers open. The host itself still reaches them."""
    net = MODES["vxlan"][1]
    a = env.container("a")
    env.apply(DesiredState(networks=(net,), endpoints=(Endpoint("a", "t1", "n", "10.30.0.1", "h1", netns=a),)))
    h1 = env.cluster.hosts[0]
    server = env.cluster.outside_server()
    echo = EchoServer(a, 7003, tmp_path)
    in_ns(server, "ip", "route", "add", "10.30.0.0/24", "via", h1.vtep_ip)
    try:
        assert ping_eventually(a, SERVER, 10)
        assert not ping(server, "10.30.0.1", count=2)
        client = EchoClient(server, "10.30.0.1", 7003, connect_timeout=3)
        client.close()
        assert not client.connected
        host_client = EchoClient(h1.netns, "10.30.0.1", 7003)
        try:
            assert host_client.say("from the host") == "from the host"
        finally:
            host_client.close()
        assert eventually(echo.peers, what="the host's connection") == ["172.19.255.254"]
    finally:
        in_ns(server, "ip", "route", "del", "10.30.0.0/24", check=False)
        echo.stop()
