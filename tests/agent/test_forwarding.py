"""Forwarding modes on a two-host simulated cluster with real OVS: VLAN and VXLAN bridging, network
isolation in bridge fwdMode, routing in routing fwdMode, tenants with overlapping subnets."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.state import DesiredState, Endpoint, Network
from testbed.cluster import in_ns
from testbed.netcheck import http_ok, http_server, ping, ping_eventually
from tests.agent.conftest import ClusterEnv, requires_datapath

pytestmark = requires_datapath


def _same_network(env: ClusterEnv, net: Network) -> tuple[str, str]:
    a, b = env.container("a"), env.container("b")
    env.apply(DesiredState(networks=(net,), endpoints=(
        Endpoint("a", net.tenant, net.name, "10.1.0.1", "h1", netns=a),
        Endpoint("b", net.tenant, net.name, "10.1.0.2", "h2", netns=b))))
    return a, b


@pytest.mark.parametrize("net", [
    Network("t1", "vlan-net", "vlan", "10.1.0.0/24", vlan=100),
    Network("t1", "vxlan-net", "vxlan", "10.1.0.0/24", vni=5001),
], ids=["vlan", "vxlan"])
def test_same_network_across_hosts(env: ClusterEnv, net: Network, tmp_path: Path) -> None:
    a, b = _same_network(env, net)
    assert ping_eventually(a, "10.1.0.2")
    assert ping(b, "10.1.0.1", count=3)
    server = http_server(b, 8080, tmp_path)
    try:
        assert http_ok(a, "10.1.0.2", 8080), "TCP across hosts failed (TX checksum offload?)"
    finally:
        server.kill()
    mtu = in_ns(a, "cat", "/sys/class/net/eth0/mtu").stdout.strip()
    assert mtu == ("1450" if net.encap == "vxlan" else "1500")


def _two_networks(env: ClusterEnv, fwd_mode: str) -> tuple[str, str, str]:
    """a in n1 (VXLAN) on h1; b in n2 (VLAN) on h2; c in n2 on h1. Gateways exist, so containers have
    a default route and isolation is the datapath's doing, not a missing route."""
    n1 = Network("t1", "n1", "vxlan", "10.1.0.0/24", vni=6001, gateway="10.1.0.254")
    n2 = Network("t1", "n2", "vlan", "10.2.0.0/24", vlan=200, gateway="10.2.0.254")
    a, b, c = env.container("a"), env.container("b"), env.container("c")
    env.apply(DesiredState(fwd_mode=fwd_mode, networks=(n1, n2), endpoints=(
        Endpoint("a", "t1", "n1", "10.1.0.1", "h1", netns=a),
        Endpoint("b", "t1", "n2", "10.2.0.2", "h2", netns=b),
        Endpoint("c", "t1", "n2", "10.2.0.3", "h1", netns=c))))
    return a, b, c


def test_bridge_mode_isolates_networks(env: ClusterEnv) -> None:
    a, b, c = _two_networks(env, "bridge")
    assert ping_eventually(b, "10.2.0.3"), "same network must work (control)"
    assert not ping(a, "10.2.0.2", count=2)
    assert not ping(a, "10.2.0.3", count=2)
    assert not ping(c, "10.1.0.1", count=2)


def test_routing_mode_routes_networks_of_a_tenant(env: ClusterEnv) -> None:
    a, b, _ = _two_networks(env, "routing")
    assert ping_eventually(a, "10.2.0.2"), "routed across hosts, VXLAN -> VLAN"
    assert ping(a, "10.2.0.3", count=2), "routed on the same host"
    assert ping(b, "10.1.0.1", count=2), "routed back, VLAN -> VXLAN"
    ttl = in_ns(a, "ping", "-c", "1", "-W", "1", "10.2.0.3").stdout
    assert "ttl=63" in ttl, "a routed hop decrements the TTL"
    assert ping(b, "10.2.0.3", count=2), "same network still bridged"


def test_overlapping_subnets_in_two_tenants(env: ClusterEnv) -> None:
    t1 = Network("t1", "net", "vxlan", "10.5.0.0/24", vni=7001)
    t2 = Network("t2", "net", "vxlan", "10.5.0.0/24", vni=7002)
    a, b, c, d = (env.container(n) for n in "abcd")
    env.apply(DesiredState(networks=(t1, t2), endpoints=(
        Endpoint("a", "t1", "net", "10.5.0.1", "h1", netns=a),
        Endpoint("b", "t1", "net", "10.5.0.2", "h2", netns=b),
        Endpoint("c", "t2", "net", "10.5.0.1", "h1", netns=c),
        Endpoint("d", "t2", "net", "10.5.0.3", "h2", netns=d))))
    mac = {ns: in_ns(ns, "cat", "/sys/class/net/eth0/address").stdout.strip() for ns in (a, b, c)}
    assert mac[a] != mac[c], "the same address in two tenants: two MACs, as the state assigned them"
    assert ping_eventually(a, "10.5.0.2")
    assert ping_eventually(c, "10.5.0.3")
    assert not ping(c, "10.5.0.2", count=2), "t2 must not reach t1's 10.5.0.2"
    assert not ping(d, "10.5.0.2", count=2)
    neigh_a = in_ns(a, "ip", "neigh", "show", "10.5.0.2").stdout
    assert mac[b] in neigh_a
    assert ping(d, "10.5.0.1")
    neigh_d = in_ns(d, "ip", "neigh", "show", "10.5.0.1").stdout
    assert mac[c] in neigh_d, "t2's 10.5.0.1 is c, not t1's a"
    assert mac[a] not in neigh_d
