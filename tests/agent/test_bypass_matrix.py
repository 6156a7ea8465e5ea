"""The bypass matrix: no crafted frame reaches a container its group's policy protects.

For VLAN, VXLAN and routing fwdMode, on one two-host cluster (module scope; one state per mode):

    h1: a (open)  x (outdeny)  t1 (indeny)  r1 (open)
    h2:           x2 (outdeny) t2 (indeny)  r2 (open)

``indeny``: ``in deny`` everything, ``in allow`` from its own group (priority 10). ``outdeny``: ``out
deny`` everything, ``out allow`` to its own group. Attackers: ``a`` against t1 (same host) and t2
(cross host); ``x`` against r1 and r2. Each attempt (testbed.attacks.ATTACKS: plain unicast, broadcast
MAC, multicast MAC and IP, unknown MAC, gateway MAC, spoofed source IP, MAC, both) is a hand-made frame;
a sniffer on every protected container's port says whether it arrived. A control frame on an allowed
path (a group member, or ``a`` for the open group) is sent afterwards and awaited, so "blocked" is not
"not yet". Allowed traffic (kernel ping with ARP) and ARP between members are checked in the same states.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from agent.pipeline.tables import ROUTER_MAC
from agent.state import DesiredState, Endpoint, EndpointGroup, Network, Policy, Rule
from contiv_api.mac import candidates
from testbed.attacks import Case, Member, Sniffer, attack_frames, control_arrives, leaked_attempts, send_frames
from testbed.cluster import Cluster, SimHost, in_ns
from testbed.netcheck import ping, ping_eventually
from testbed.waiting import eventually
from tests.agent.conftest import ClusterEnv, requires_datapath

pytestmark = requires_datapath

SUBNET, GATEWAY = "10.20.0", "10.20.0.254"
# name -> (host, group)
LAYOUT = {"a": ("h1", "open"), "x": ("h1", "outdeny"), "t1": ("h1", "indeny"), "r1": ("h1", "open"),
          "x2": ("h2", "outdeny"), "t2": ("h2", "indeny"), "r2": ("h2", "open")}
IPS = {name: f"{SUBNET}.{i}" for i, name in enumerate(LAYOUT, start=1)}
MODES = {
    "vlan": ("bridge", Network("t1", "n", "vlan", f"{SUBNET}.0/24", vlan=320, gateway=GATEWAY)),
    "vxlan": ("bridge", Network("t1", "n", "vxlan", f"{SUBNET}.0/24", vni=9320, gateway=GATEWAY)),
    "routing": ("routing", Network("t1", "n", "vxlan", f"{SUBNET}.0/24", vni=9321, gateway=GATEWAY)),
}
POLICIES = (
    Policy("t1", "p-indeny", (Rule("1", "in", "deny"), Rule("2", "in", "allow", priority=10, from_group="indeny"))),
    Policy("t1", "p-outdeny", (Rule("1", "out", "deny"), Rule("2", "out", "allow", priority=10, to_group="outdeny"))),
)
GROUPS = (EndpointGroup("t1", "open", 300, "n"), EndpointGroup("t1", "indeny", 301, "n", ("p-indeny",)),
          EndpointGroup("t1", "outdeny", 302, "n", ("p-outdeny",)))
CASES = {
    "in_deny_same_host": Case("a", "t1", "t2", "t2", ("t1", "t2"), decoy="r1"),
    "in_deny_cross_host": Case("a", "t2", "t1", "t1", ("t1", "t2"), decoy="r2"),
    "out_deny_same_host": Case("x", "r1", "a", "a", ("t1", "t2", "r1", "r2"), decoy="x2"),
    "out_deny_cross_host": Case("x", "r2", "a", "a", ("t1", "t2", "r1", "r2"), decoy="x2"),
}


@dataclass
class Matrix:
    mode: str
    env: ClusterEnv
    members: dict[str, Member]
    sniffers: dict[str, Sniffer]

    @property
    def gateway_mac(self) -> str:
        return ROUTER_MAC if self.mode == "routing" else next(candidates(GATEWAY))


@pytest.fixture(scope="module", params=list(MODES))
def matrix(request: pytest.FixtureRequest, cluster: Cluster, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[Matrix]:
    mode = request.param
    fwd_mode, net = MODES[mode]
    env = ClusterEnv(cluster)
    ns = {name: env.container(f"{mode[:2]}{name}") for name in LAYOUT}
    eps = tuple(Endpoint(name, "t1", "n", IPS[name], host, group=group, netns=ns[name])
                for name, (host, group) in LAYOUT.items())
    env.apply(DesiredState(fwd_mode=fwd_mode, networks=(net,), groups=GROUPS, policies=POLICIES, endpoints=eps))
    members = {ep.id: Member(ep.id, ns[ep.id], ep.ip, ep.mac) for ep in eps}
    work = tmp_path_factory.mktemp(f"bypass-{mode}")
    sniffers: dict[str, Sniffer] = {}
    try:
        for name in ("t1", "t2", "r1", "r2"):
            sniffers[name] = Sniffer(members[name], work)
        yield Matrix(mode, env, members, sniffers)
    finally:
        for sniffer in sniffers.values():
            sniffer.stop()
        env.reset()


@pytest.mark.parametrize("case", list(CASES))
def test_no_crafted_frame_reaches_a_protected_port(matrix: Matrix, case: str) -> None:
    leaked = leaked_attempts(f"{matrix.mode}-{case}", CASES[case], matrix.members, matrix.sniffers,
                             matrix.gateway_mac)
    assert not any(leaked.values()), f"{matrix.mode}: frames reached protected ports: {leaked}"


def test_allowed_traffic_flows_and_arp_resolves(matrix: Matrix) -> None:
    m = matrix.members
    # open to open, members of one group, and out of an in-deny group (its replies are established)
    for src, dst in (("a", "r1"), ("a", "r2"), ("t1", "t2"), ("x", "x2"), ("t2", "r2")):
        in_ns(m[src].ns, "ip", "neigh", "flush", "all")
        assert ping_eventually(m[src].ns, m[dst].ip), f"{matrix.mode}: {src} -> {dst}"
        neigh = in_ns(m[src].ns, "ip", "neigh", "show", m[dst].ip).stdout
        assert m[dst].mac in neigh, f"{matrix.mode}: {src} resolved {dst}: {neigh!r}"
    # Blocked IP, but ARP still resolves (answered in the switch) for a denied pair.
    in_ns(m["a"].ns, "ip", "neigh", "flush", "all")
    assert not ping(m["a"].ns, m["t2"].ip, count=1)
    assert m["t2"].mac in in_ns(m["a"].ns, "ip", "neigh", "show", m["t2"].ip).stdout


def test_rule_counters_count_the_denied_attempts(matrix: Matrix) -> None:
    """Per-rule cookies: the agent's inspect API reports packets per rule from the switch."""
    m, h1 = matrix.members, matrix.env.cluster.hosts[0]
    tag = f"{matrix.mode}-count-{secrets.token_hex(3)}"
    before = _deny_packets(h1)
    send_frames(m["a"].ns, [attack_frames(m["a"], m["t1"], m["t2"], matrix.gateway_mac, tag)["unicast"]] * 3)
    eventually(lambda: _deny_packets(h1) >= before + 3, timeout=10, what="deny rule counted 3 more packets")
    _, info = h1.get("/inspect/driver?rules=1")
    rules = {r["rule"]: r for r in info["rules"]}
    assert rules["t1:p-indeny:1@t1:indeny"]["action"] == "deny"
    assert rules["t1:p-indeny:1@t1:indeny"]["bytes"] > 0


def _deny_packets(host: SimHost) -> int:
    _, info = host.get("/inspect/driver?rules=1")
    return next((r["packets"] for r in info["rules"] if r["rule"] == "t1:p-indeny:1@t1:indeny"), -1)


def test_sniffers_see_what_reaches_the_port(matrix: Matrix) -> None:
    """The instrument itself: a frame that policy allows does show up, in every mode."""
    m = matrix.members
    tag = f"{matrix.mode}-probe-{secrets.token_hex(3)}"
    for name in ("r1", "r2"):
        assert control_arrives(m["a"], matrix.sniffers[name], tag), name
