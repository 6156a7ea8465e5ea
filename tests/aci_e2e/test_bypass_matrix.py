"""The bypass matrix in ACI mode, through the simulated leaf: no crafted frame crosses EPGs without a
contract.

Containers (tenant ``byp``, one network): a1 (EPG a, h1), a2 (a, h2), b1 (b, h1), b2 (b, h2), x1 (x, h1),
x2 (x, h2).
EPG b carries an ``in deny`` policy, EPG x an ``out deny`` one; in ACI mode deny rules add no contract,
so the fabric's default (deny between EPGs, allow within one) is what must hold. Attackers: a1 against
b1 (same host: the agent must not switch it locally) and b2 (cross host); x1 against a1 and a2. Each
attempt of testbed.attacks.ATTACKS is a hand-made frame (the gateway MAC is the bridge domain's, which
the leaf routes for); sniffers on the protected containers' ports tell whether it arrived, after a
control frame from a member of the target's own EPG (intra-EPG: allowed) did.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from testbed.attacks import Case, Member, Sniffer, leaked_attempts
from testbed.cluster import in_ns
from testbed.cluster.aci import AciCluster
from testbed.netcheck import ping_eventually
from testbed.sync_cluster import add_endpoint

TENANT = "byp"
SUBNET = "10.43.0"
BD_MAC = "00:22:bd:f8:19:ff"  # apic_mock's fvBD default, the pervasive gateway's MAC
CONTAINERS = {"a1": (0, "a"), "a2": (1, "a"), "b1": (0, "b"), "b2": (1, "b"), "x1": (0, "x"), "x2": (1, "x")}
CASES = {
    "in_deny_same_host": Case("a1", "b1", "b2", "b2", ("b1", "b2"), decoy="a2"),
    "in_deny_cross_host": Case("a1", "b2", "b1", "b1", ("b1", "b2"), decoy="a2"),
    "out_deny_same_host": Case("x1", "a1", "a2", "a2", ("a1", "a2", "b1", "b2"), decoy="x2"),
    "out_deny_cross_host": Case("x1", "a2", "a1", "a1", ("a1", "a2", "b1", "b2"), decoy="x2"),
}


@dataclass
class AciMatrix:
    members: dict[str, Member]
    sniffers: dict[str, Sniffer]


@pytest.fixture(scope="module")
def matrix(fabric_cluster: AciCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AciMatrix]:
    assert fabric_cluster.control is not None
    assert fabric_cluster.leaf is not None
    api = fabric_cluster.control.api
    api.tenant(TENANT)
    api.network(TENANT, "net", f"{SUBNET}.0/24", f"{SUBNET}.254")
    api.policy(TENANT, "pb")
    api.rule(TENANT, "pb", "1", direction="in", action="deny")
    api.policy(TENANT, "px")
    api.rule(TENANT, "px", "1", direction="out", action="deny")
    api.group(TENANT, "a")
    api.group(TENANT, "b", policies=("pb",))
    api.group(TENANT, "x", policies=("px",))
    api.wait_synced(api.profile(TENANT, "app", "a", "b", "x"))
    fabric_cluster.leaf.wait_synced()
    members = {}
    for name, (host, group) in CONTAINERS.items():
        ns = fabric_cluster.container(f"{TENANT}{name}")
        status, body = add_endpoint(fabric_cluster.hosts[host], endpoint_id=f"{TENANT}-{name}", tenant=TENANT,
                                    network="net", group=group, netns=ns)
        assert status == 200, body
        members[name] = Member(name, ns, body["ip"], body["mac"])
    work = tmp_path_factory.mktemp("aci-bypass")
    sniffers: dict[str, Sniffer] = {}
    try:
        for name in ("a1", "a2", "b1", "b2"):
            sniffers[name] = Sniffer(members[name], work)
        # the leaf learns endpoints from their traffic; the same-EPG paths work before any attempt
        assert ping_eventually(members["a1"].ns, members["a2"].ip, timeout=15)
        assert ping_eventually(members["b1"].ns, members["b2"].ip, timeout=15)
        yield AciMatrix(members, sniffers)
    finally:
        for sniffer in sniffers.values():
            sniffer.stop()


@pytest.mark.parametrize("case", list(CASES))
def test_no_crafted_frame_crosses_epgs_without_a_contract(matrix: AciMatrix, case: str) -> None:
    leaked = leaked_attempts(f"aci-{case}", CASES[case], matrix.members, matrix.sniffers, BD_MAC)
    assert not any(leaked.values()), f"aci: frames reached protected ports: {leaked}"


def test_same_epg_traffic_flows_and_arp_resolves(matrix: AciMatrix) -> None:
    m = matrix.members
    for src, dst in (("a1", "a2"), ("a2", "a1"), ("b1", "b2"), ("b2", "b1")):
        in_ns(m[src].ns, "ip", "neigh", "flush", "all")
        assert ping_eventually(m[src].ns, m[dst].ip, timeout=10), f"{src} -> {dst}"
        assert m[dst].mac in in_ns(m[src].ns, "ip", "neigh", "show", m[dst].ip).stdout, f"{src} resolved {dst}"
