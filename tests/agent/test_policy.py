"""Contiv policy semantics on real OVS, with TCP (busybox httpd/nc) and ICMP.

Topology (network n, VXLAN, 10.3.0.0/24): srv (EPG srv) on h2 serving TCP 8000 and 8001; cli1 (EPG
common) and cli2 (EPG other) on h1; cli2 also serves 8000. Network n2 (10.4.0.0/24, VLAN) holds cli4
(EPG other) on h1 for the network rules, which need routing fwdMode to cross networks.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from agent.state import DesiredState, Endpoint, EndpointGroup, Network, Policy, Rule
from testbed.netcheck import http_ok, http_server, ping, ping_eventually
from tests.agent.conftest import ClusterEnv, requires_datapath

pytestmark = requires_datapath

N = Network("t1", "n", "vxlan", "10.3.0.0/24", vni=8001, gateway="10.3.0.254")
N2 = Network("t1", "n2", "vlan", "10.4.0.0/24", vlan=300, gateway="10.4.0.254")
SRV, CLI1, CLI2, CLI4 = "10.3.0.10", "10.3.0.1", "10.3.0.2", "10.4.0.4"


@dataclass
class Lab:
    env: ClusterEnv
    ns: dict[str, str]
    servers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def apply(self, policies: dict[str, tuple[Rule, ...]], fwd_mode: str = "bridge") -> None:
        """Attach a policy holding *rules* to each named group (srv, common, other)."""
        groups = tuple(EndpointGroup("t1", g, gid, "n", (f"p-{g}",) if g in policies else ())
                       for g, gid in (("srv", 100), ("common", 101), ("other", 102)))
        pols = tuple(Policy("t1", f"p-{g}", rules) for g, rules in policies.items())
        self.env.apply(DesiredState(fwd_mode=fwd_mode, networks=(N, N2), groups=groups, policies=pols,
                                    endpoints=(
            Endpoint("srv", "t1", "n", SRV, "h2", group="srv", netns=self.ns["srv"]),
            Endpoint("cli1", "t1", "n", CLI1, "h1", group="common", netns=self.ns["cli1"]),
            Endpoint("cli2", "t1", "n", CLI2, "h1", group="other", netns=self.ns["cli2"]),
            Endpoint("cli4", "t1", "n2", CLI4, "h1", group="other", netns=self.ns["cli4"]))))

    def tcp(self, src: str, dst_ip: str, port: int) -> bool:
        return http_ok(self.ns[src], dst_ip, port, timeout=1)


@pytest.fixture
def lab(env: ClusterEnv, tmp_path: Path) -> Iterator[Lab]:
    lab = Lab(env, {name: env.container(name) for name in ("srv", "cli1", "cli2", "cli4")})
    lab.apply({})
    try:
        for name, port in (("srv", 8000), ("srv", 8001), ("cli2", 8000)):
            lab.servers.append(http_server(lab.ns[name], port, tmp_path))
        assert ping_eventually(lab.ns["cli1"], SRV), "baseline connectivity"
        yield lab
    finally:
        for proc in lab.servers:
            proc.kill()
            proc.wait()


def test_epg_without_policy_allows_all(lab: Lab) -> None:
    assert lab.tcp("cli1", SRV, 8000)
    assert lab.tcp("cli2", SRV, 8001)
    assert ping(lab.ns["cli2"], SRV, count=2)


def test_deny_tcp_with_higher_priority_allow_8000(lab: Lab) -> None:
    lab.apply({"srv": (Rule("1", "in", "deny", protocol="tcp"),
                       Rule("2", "in", "allow", priority=10, protocol="tcp", port=8000))})
    assert lab.tcp("cli1", SRV, 8000)
    assert not lab.tcp("cli1", SRV, 8001)
    assert lab.tcp("cli2", SRV, 8000)
    assert not lab.tcp("cli2", SRV, 8001)
    assert ping(lab.ns["cli1"], SRV, count=2), "ICMP is not covered by a tcp rule"


def test_rule_added_then_deleted_at_runtime(lab: Lab) -> None:
    deny = Rule("1", "in", "deny", protocol="tcp")
    allow_8001 = Rule("3", "in", "allow", priority=10, protocol="tcp", port=8001)
    lab.apply({"srv": (deny,)})
    assert not lab.tcp("cli1", SRV, 8001)
    lab.apply({"srv": (deny, allow_8001)})
    assert lab.tcp("cli1", SRV, 8001)
    lab.apply({"srv": (deny,)})
    assert not lab.tcp("cli1", SRV, 8001), "a deleted allow rule stops new connections"


def test_from_group(lab: Lab) -> None:
    lab.apply({"srv": (Rule("1", "in", "deny", protocol="tcp"),
                       Rule("2", "in", "allow", priority=10, protocol="tcp", port=8001,
                            from_group="common"))})
    assert lab.tcp("cli1", SRV, 8001), "member of common"
    assert not lab.tcp("cli2", SRV, 8001), "member of other"


def test_from_network(lab: Lab) -> None:
    lab.apply({"srv": (Rule("1", "in", "deny", protocol="tcp"),
                       Rule("2", "in", "allow", priority=10, protocol="tcp", port=8000, from_network="n2"))},
              fwd_mode="routing")
    assert ping_eventually(lab.ns["cli4"], SRV), "routed baseline"
    assert lab.tcp("cli4", SRV, 8000), "from network n2"
    assert not lab.tcp("cli1", SRV, 8000), "from network n"


@pytest.mark.parametrize(("from_ip", "allowed", "blocked"), [
    (CLI1, "cli1", "cli2"),
    ("10.3.0.2/31", "cli2", "cli1"),  # host bits set, as Contiv accepts: covers .2 and .3
])
def test_from_ip_and_subnet(lab: Lab, from_ip: str, allowed: str, blocked: str) -> None:
    lab.apply({"srv": (Rule("1", "in", "deny", protocol="tcp"),
                       Rule("2", "in", "allow", priority=10, protocol="tcp", port=8000, from_ip=from_ip))})
    assert lab.tcp(allowed, SRV, 8000)
    assert not lab.tcp(blocked, SRV, 8000)


def test_out_rules_to_group(lab: Lab) -> None:
    lab.apply({"common": (Rule("1", "out", "deny", protocol="tcp"),
                          Rule("2", "out", "allow", priority=10, protocol="tcp", port=8000, to_group="srv"))})
    assert lab.tcp("cli1", SRV, 8000)
    assert not lab.tcp("cli1", SRV, 8001), "port not allowed"
    assert not lab.tcp("cli1", CLI2, 8000), "group not allowed"
    assert lab.tcp("cli2", SRV, 8001), "the out policy binds only the common group"


def test_out_rules_to_ip(lab: Lab) -> None:
    lab.apply({"common": (Rule("1", "out", "deny", protocol="tcp"),
                          Rule("2", "out", "allow", priority=10, protocol="tcp", to_ip=CLI2))})
    assert lab.tcp("cli1", CLI2, 8000)
    assert not lab.tcp("cli1", SRV, 8000)


def test_out_rules_to_network(lab: Lab, tmp_path: Path) -> None:
    lab.servers.append(http_server(lab.ns["cli4"], 8000, tmp_path))
    lab.apply({"common": (Rule("1", "out", "deny", protocol="tcp"),
                          Rule("2", "out", "allow", priority=10, protocol="tcp", to_network="n2"))},
              fwd_mode="routing")
    assert ping_eventually(lab.ns["cli1"], CLI4), "routed baseline"
    assert lab.tcp("cli1", CLI4, 8000)
    assert not lab.tcp("cli1", SRV, 8000)


def test_icmp_deny_then_allow_from_ip(lab: Lab) -> None:
    lab.apply({"srv": (Rule("1", "in", "deny", protocol="icmp"),)})
    assert not ping(lab.ns["cli1"], SRV, count=2)
    assert not ping(lab.ns["cli2"], SRV, count=2)
    assert ping(lab.ns["srv"], CLI1, count=2), "stateful: replies to srv's own pings pass"
    assert lab.tcp("cli1", SRV, 8000), "tcp untouched by an icmp rule"
    lab.apply({"srv": (Rule("1", "in", "deny", protocol="icmp"),
                       Rule("2", "in", "allow", priority=100, protocol="icmp", from_ip=CLI1))})
    assert ping(lab.ns["cli1"], SRV, count=2)
    assert not ping(lab.ns["cli2"], SRV, count=2)
