"""Agents in ACI mode, without a leaf: what they put on the trunk, seen from the root-namespace end of the cable.

The trunks meet on a plain Linux bridge, which forwards tagged frames untouched and never re-tags. So
same-EPG traffic crosses hosts (both ends use the EPG's VLAN), while traffic between EPGs or to the
bridge domain's gateway has nobody to answer it: exactly what proves the agent leaves those to the
fabric. One tenant for the module; tests add endpoints in order and build on each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from testbed.aci_stack import AciApi
from testbed.cluster import SimHost
from testbed.cluster.aci import AciCluster, TrunkCapture
from testbed.netcheck import ping, ping_eventually
from testbed.sync_cluster import add_endpoint, wait_revision
from testbed.waiting import eventually

TENANT = "acit"
SUBNET = "10.31.0"
GATEWAY = f"{SUBNET}.254"


@dataclass
class Fabric:
    """The module's tenant: EPG VLANs, and the endpoints added so far (id -> (namespace, add result))."""

    api: AciApi
    vlans: dict[str, int]
    net_vlan: int
    eps: dict[str, tuple[str, dict]] = field(default_factory=dict)


@pytest.fixture(scope="module")
def fabric(aci_cluster: AciCluster) -> Fabric:
    assert aci_cluster.control is not None
    api = aci_cluster.control.api
    api.tenant(TENANT)
    api.network(TENANT, "net", f"{SUBNET}.0/24", GATEWAY)
    vlans = {g: api.group(TENANT, g) for g in ("a", "b", "default-group")}
    net_vlan = int(api.inspect("networks", f"{TENANT}:net")["Oper"]["pktTag"])
    assert len({*vlans.values(), net_vlan}) == 4, "every EPG has a VLAN of its own, not the network's"
    return Fabric(api, vlans, net_vlan)


def _add(cluster: AciCluster, fabric: Fabric, host: SimHost, name: str, group: str = "") -> dict:
    ns = cluster.container(f"{TENANT}{name}")
    req = {"endpoint_id": f"{TENANT}-{name}", "tenant": TENANT, "network": "net", "netns": ns}
    if group:
        req["group"] = group
    status, body = add_endpoint(host, **req)
    assert status == 200, body
    fabric.eps[name] = (ns, body)
    return body


def _garps(capture: TrunkCapture, ip: str) -> list:
    return capture.wait_for(rf"Request who-has {ip} tell {ip},")


def test_endpoint_add_sends_a_garp_tagged_with_its_epg_vlan(aci_cluster: AciCluster, fabric: Fabric) -> None:
    h1 = aci_cluster.hosts[0]
    with TrunkCapture(aci_cluster.trunk_of(1), aci_cluster.root) as cap:
        a1 = _add(aci_cluster, fabric, h1, "a1", "a")
        garps = _garps(cap, a1["ip"])
    assert a1["vlan"] == fabric.vlans["a"]
    assert {(f.src, f.vlan) for f in garps} == {(a1["mac"], fabric.vlans["a"])}
    assert h1.get("/inspect/driver")[1]["infra"] == "aci"


def test_same_epg_ping_across_hosts_on_the_epg_vlan(aci_cluster: AciCluster, fabric: Fabric) -> None:
    h2 = aci_cluster.hosts[1]
    a2 = _add(aci_cluster, fabric, h2, "a2", "a")
    ns1, a1 = fabric.eps["a1"]
    with TrunkCapture(aci_cluster.trunk_of(1), aci_cluster.root) as cap:
        assert ping_eventually(ns1, a2["ip"])
        echoes = cap.wait_for(rf"{a1['ip']} > {a2['ip']}: ICMP echo request")
        replies = cap.wait_for(rf"{a2['ip']} > {a1['ip']}: ICMP echo reply")
    assert echoes
    assert replies
    assert {f.vlan for f in echoes + replies} == {fabric.vlans["a"]}
    assert not [f for f in cap.frames() if f.vlan in (0, fabric.net_vlan) and SUBNET in f.text]


def test_other_epg_is_not_delivered_locally(aci_cluster: AciCluster, fabric: Fabric) -> None:
    """b1 sits on the same host as a1; without a fabric to carry it across EPGs, a1 cannot reach it,
    and a1's ARP for b1 leaves on EPG a's VLAN (the fabric would answer or forward it)."""
    h1 = aci_cluster.hosts[0]
    b1 = _add(aci_cluster, fabric, h1, "b1", "b")
    ns1, a1 = fabric.eps["a1"]
    with TrunkCapture(aci_cluster.trunk_of(1), aci_cluster.root) as cap:
        assert not ping(ns1, b1["ip"], count=2)
        arps = cap.wait_for(rf"Request who-has {b1['ip']} tell {a1['ip']}")
    assert arps
    assert {f.vlan for f in arps} == {fabric.vlans["a"]}
    # b1 itself still works within its own EPG's segment: a same-EPG peer on the other host reaches it
    b2 = _add(aci_cluster, fabric, aci_cluster.hosts[1], "b2", "b")
    assert ping_eventually(fabric.eps["b2"][0], b1["ip"])
    assert b2["vlan"] == fabric.vlans["b"]


def test_gateway_is_left_to_the_fabric(aci_cluster: AciCluster, fabric: Fabric) -> None:
    ns1, a1 = fabric.eps["a1"]
    with TrunkCapture(aci_cluster.trunk_of(1), aci_cluster.root) as cap:
        assert not ping(ns1, GATEWAY)
        arps = cap.wait_for(rf"Request who-has {GATEWAY} tell {a1['ip']}")
    assert arps
    assert {f.vlan for f in arps} == {fabric.vlans["a"]}


def test_endpoint_without_group_joins_default_group(aci_cluster: AciCluster, fabric: Fabric) -> None:
    h2 = aci_cluster.hosts[1]
    with TrunkCapture(aci_cluster.trunk_of(2), aci_cluster.root) as cap:
        d = _add(aci_cluster, fabric, h2, "d1")
        garps = _garps(cap, d["ip"])
    record = fabric.api.get(f"/api/v1/endpoints/{TENANT}-d1/")
    assert record["groupName"] == "default-group"
    assert d["vlan"] == fabric.vlans["default-group"]
    assert {f.vlan for f in garps} == {fabric.vlans["default-group"]}


def test_policy_is_not_programmed_on_the_hosts(aci_cluster: AciCluster, fabric: Fabric) -> None:
    api = fabric.api
    api.policy(TENANT, "p")
    api.rule(TENANT, "p", "1", action="deny", protocol="icmp", fromEndpointGroup="a")
    api.group(TENANT, "b", policies=("p",))
    rev = int(api.http.get("/api/v1/snapshot").headers["X-Revision"])
    wait_revision(aci_cluster, rev)
    for host in aci_cluster.hosts:
        _, info = host.get("/inspect/driver?flows=1")
        for stage in ("egress_policy", "ingress_policy"):
            assert sum(info["flows_by_stage"][stage].values()) == len(info["flows_by_stage"][stage]), info
            assert all("priority=0" in f and "goto_table" in f for f in info["flows"][stage])
        assert not any("ct(" in f for f in host.flows())
    # a1 -> a2 still works, and so would a1 -> b (if a fabric carried it): nothing on the host denies icmp
    assert ping_eventually(fabric.eps["a1"][0], fabric.eps["a2"][1]["ip"])


def test_app_profile_push_re_announces_its_endpoints(aci_cluster: AciCluster, fabric: Fabric) -> None:
    """After netmaster reports the profile synced to the APIC, the agents send new gratuitous ARPs for
    the endpoints of its EPGs (a and b), and not for the others (default-group). The profile is the
    module's first; the add-time repeats are over before the capture starts."""
    api = fabric.api
    _, a1 = fabric.eps["a1"]
    _, b1 = fabric.eps["b1"]
    _, d1 = fabric.eps["d1"]
    for host in aci_cluster.hosts:
        eventually(lambda host=host: host.get("/inspect/driver")[1]["garps_pending"] == 0, timeout=15,
                   what=f"{host.name}: announcement repeats done")
    before = aci_cluster.hosts[0].get("/inspect/driver")[1]["garps_sent"]
    with TrunkCapture(aci_cluster.trunk_of(1), aci_cluster.root) as cap1, \
            TrunkCapture(aci_cluster.trunk_of(2), aci_cluster.root) as cap2:
        key = api.profile(TENANT, "app", "a", "b")
        api.wait_synced(key)
        assert {(f.src, f.vlan) for f in _garps(cap1, a1["ip"])} == {(a1["mac"], fabric.vlans["a"])}
        assert {(f.src, f.vlan) for f in _garps(cap1, b1["ip"])} == {(b1["mac"], fabric.vlans["b"])}
        # repeated for a fabric still programming the new EPGs: 1, 2, 4, 8 s later
        assert len(cap1.wait_for(rf"who-has {a1['ip']} tell {a1['ip']},", timeout=3.0, count=3)) >= 3
        assert not cap2.wait_for(rf"who-has {d1['ip']} tell {d1['ip']}", timeout=1.0)
    assert aci_cluster.hosts[0].get("/inspect/driver")[1]["garps_sent"] >= before + 6
