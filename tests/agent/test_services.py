"""Service load balancing with real packets on a two-host simulated cluster (VXLAN): a VIP spread over
providers on both hosts by a select group, TCP and UDP; churn (a provider added and one removed while
connections run); policy judged on the provider's real address after DNAT, against an attacker's tricks.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from agent.ovs.flow import cookie_round
from agent.pipeline.tables import Table
from agent.state import DesiredState, Endpoint, EndpointGroup, Network, Policy, Rule, Service, ServicePort
from testbed.lbcheck import Holder, NameServer, connect
from testbed.waiting import eventually
from tests.agent.conftest import ClusterEnv, requires_datapath

pytestmark = requires_datapath

NET = Network("t1", "net", "vxlan", "10.9.0.0/24", vni=9100)
VIP = "10.9.0.100"
TARGET = 8080
PORTS = (ServicePort(80, TARGET, "tcp"), ServicePort(81, TARGET, "udp"))
# providers p1 (h1), p2 (h2), p3 (h1), p4 (h2, added by the churn test); clients c1 (h1), c2 (h2)
PROVIDERS = {"p1": ("10.9.0.11", "h1"), "p2": ("10.9.0.12", "h2"), "p3": ("10.9.0.13", "h1"),
             "p4": ("10.9.0.14", "h2")}
CLIENTS = {"c1": ("10.9.0.21", "h1"), "c2": ("10.9.0.22", "h2"), "bad": ("10.9.0.23", "h1")}
WEB = EndpointGroup("t1", "web", 31, "net")
BAD = EndpointGroup("t1", "bad", 32, "net")


@dataclass
class Lab:
    env: ClusterEnv
    spaces: dict[str, str]
    servers: list[NameServer]
    base: DesiredState

    def apply(self, providers: tuple[str, ...], groups: tuple[EndpointGroup, ...] = (WEB, BAD),
              policies: tuple[Policy, ...] = (), affinity: int = 0) -> None:
        svc = Service("t1", "web", VIP, PORTS, providers, affinity)
        self.env.apply(replace(self.base, groups=groups, policies=policies, services=(svc,)))


@pytest.fixture
def lab(env: ClusterEnv, tmp_path: Path) -> Iterator[Lab]:
    spaces = {name: env.container(name) for name in (*PROVIDERS, *CLIENTS)}
    endpoints = [Endpoint(n, "t1", "net", ip, host, group="web", netns=spaces[n])
                 for n, (ip, host) in PROVIDERS.items()]
    endpoints += [Endpoint(n, "t1", "net", ip, host, group="bad" if n == "bad" else "", netns=spaces[n])
                  for n, (ip, host) in CLIENTS.items()]
    base = DesiredState(networks=(NET,), groups=(WEB, BAD), endpoints=tuple(endpoints))
    servers = [NameServer(spaces[n], n, TARGET, tmp_path) for n in PROVIDERS]
    lab = Lab(env, spaces, servers, base)
    try:
        yield lab
    finally:
        for server in servers:
            server.stop()


def _answered(lab: Lab, client: str, ip: str, port: int, proto: str = "tcp", n: int = 1) -> int:
    counts, _ = connect(lab.spaces[client], ip, port, proto, n)
    return sum(counts.values())


def test_vip_spreads_tcp_and_udp_over_providers_on_both_hosts(lab: Lab) -> None:
    """300 connections to the VIP (150 from a client on each host) each get an answer, and each of the
    three providers (two on h1, one on h2) answers at least 20% of them; TCP (a select group) and UDP
    (multipath). The flows per service stay one per port, whatever the number of clients: the switch
    holds one VIP flow per port and one select group (3 buckets) for the TCP port."""
    lab.apply(("p1", "p2", "p3"))
    eventually(lambda: _answered(lab, "c1", VIP, 80) == 1, timeout=10, what="the VIP answers")
    for port, proto in ((80, "tcp"), (81, "udp")):
        total: dict[str, int] = {}
        for client in ("c1", "c2"):
            counts, failed = connect(lab.spaces[client], VIP, port, proto, 150)
            assert failed == 0, f"{proto}: {failed} of 150 connections from {client} got no answer"
            for name, n in counts.items():
                total[name] = total.get(name, 0) + n
        assert set(total) == {"p1", "p2", "p3"}, f"{proto}: answered by {total}"
        assert all(n >= 60 for n in total.values()), f"{proto}: each provider >= 20% of 300, got {total}"
    for host in lab.env.cluster.hosts:
        vip_flows = [f for f in host.flows() if f"nw_dst={VIP}" in f and ("group:" in f or "multipath(" in f)]
        assert len(vip_flows) == len(PORTS), vip_flows
        groups = host.ovs.run("ovs-ofctl", "-O", "OpenFlow13", "dump-groups", "contivbr")
        assert groups.count("type=select") == 1, groups
        assert groups.count("bucket=") == 3, groups
        shown = {(s["port"], s["protocol"]): s for s in host.get("/inspect/driver")[1]["services"]}
        assert shown[(80, "tcp")]["providers"] == [f"{PROVIDERS[p][0]}:{TARGET}" for p in ("p1", "p2", "p3")]
        assert shown[(80, "tcp")]["group"] is not None
        assert shown[(81, "udp")]["group"] is None  # UDP: multipath, no group


def _holder_on_two_providers(lab: Lab) -> tuple[Holder, str, Holder, str]:
    """Long-lived connections from c1 through the VIP until two landed on different providers."""
    held: dict[str, Holder] = {}
    spare: list[Holder] = []
    deadline = time.monotonic() + 30
    while len(held) < 2 and time.monotonic() < deadline:
        holder = Holder(lab.spaces["c1"], VIP, 80, 60)
        eventually(lambda h=holder: h.answers(), timeout=10, what="the held connection answers")
        name = str(holder.answers()[0].get("name"))
        (spare.append(holder) if name in held or name == "None" else held.__setitem__(name, holder))
    for holder in spare:
        holder.stop()
    assert len(held) == 2, f"two providers among long-lived connections: {list(held)}"
    (a, ha), (b, hb) = sorted(held.items())
    return ha, a, hb, b


def test_churn_keeps_others_and_cuts_the_removed_provider(lab: Lab) -> None:
    """A long-lived connection to provider A survives adding p4 and removing B; B's connection stops
    getting answers within 1 s of the change; no new connection reaches B, and p4 gets some."""
    lab.apply(("p1", "p2", "p3"))
    eventually(lambda: _answered(lab, "c1", VIP, 80) == 1, timeout=10, what="the VIP answers")
    hold_a, a, hold_b, b = _holder_on_two_providers(lab)
    try:
        eventually(lambda: len(hold_a.answers()) > 5 and len(hold_b.answers()) > 5, timeout=10,
                   what="both connections exchange")
        remaining = tuple(p for p in ("p1", "p2", "p3", "p4") if p != b)
        lab.apply(remaining)
        changed = time.monotonic()
        time.sleep(2.5)  # longer than the holder's 2 s read timeout: a cut connection has reported it
        last_b = max(float(str(x["seen"])) for x in hold_b.answers() if "name" in x)
        assert last_b <= changed + 1.0, f"{b}'s connection still answered {last_b - changed:.2f} s after removal"
        through_vip = _vip_connections(lab)
        assert PROVIDERS[a][0] in through_vip, f"{a}'s connection is in conntrack: {through_vip}"
        assert PROVIDERS[b][0] not in through_vip, f"{b}'s connections were flushed: {through_vip}"
        before = len(hold_a.answers())
        eventually(lambda: len(hold_a.answers()) > before + 5, timeout=10, what=f"{a}'s connection goes on")
        assert all("error" not in x for x in hold_a.answers()), hold_a.answers()
        assert {x.get("name") for x in hold_a.answers()} == {a}
        counts, failed = connect(lab.spaces["c2"], VIP, 80, "tcp", 90)
        assert failed == 0, counts
        assert b not in counts, counts
        assert counts.get("p4", 0) > 0, counts
    finally:
        hold_a.stop()
        hold_b.stop()


def _vip_connections(lab: Lab) -> set[str]:
    """Providers with a TCP connection through the VIP in the conntrack of c1's host (h1)."""
    dump = lab.env.cluster.hosts[0].ovs.run("ovs-appctl", "dpctl/dump-conntrack")
    return {m.group(1) for m in re.finditer(rf"^tcp,orig=\(src=[\d.]+,dst={re.escape(VIP)},.*?reply=\(src=([\d.]+),",
                                            dump, re.MULTILINE)}


def _reaches(lab: Lab, client: str, ip: str, port: int, proto: str = "tcp") -> bool:
    counts, _ = connect(lab.spaces[client], ip, port, proto, 2)
    return bool(counts)


@pytest.mark.parametrize("direction", ["in", "out"])
def test_policy_judges_the_provider_after_dnat(lab: Lab, direction: str) -> None:
    """A deny between group bad and the providers' group web ("in" on web, or "out" on bad) blocks bad
    however it tries: the provider directly, the VIP (TCP and UDP), the VIP on the provider's own port
    (not a service port), so DNAT never opens a way around policy; a client outside bad reaches the
    VIP and the providers all along, and bad reaches them again once the rule is gone."""
    if direction == "in":
        groups = (replace(WEB, policies=("guard",)), BAD)
        rule = Rule("1", "in", "deny", from_group="bad")
    else:
        groups = (WEB, replace(BAD, policies=("guard",)))
        rule = Rule("1", "out", "deny", to_group="web")
    lab.apply(("p1", "p2", "p3"), groups, (Policy("t1", "guard", (rule,)),))
    eventually(lambda: _answered(lab, "c1", VIP, 80) == 1, timeout=10, what="the VIP answers")
    assert _answered(lab, "c1", VIP, 80, n=20) == 20
    assert _answered(lab, "c1", VIP, 81, "udp", n=20) == 20
    tricks = [(VIP, 80, "tcp"), (VIP, 81, "udp"), (VIP, TARGET, "tcp"), (VIP, TARGET, "udp")]
    tricks += [(ip, TARGET, proto) for ip, _ in (PROVIDERS["p1"], PROVIDERS["p2"]) for proto in ("tcp", "udp")]
    for ip, port, proto in tricks:
        counts, _ = connect(lab.spaces["bad"], ip, port, proto, 2, wait=1.5)
        assert not counts, f"bad reached {ip}:{port}/{proto} through the {direction} deny: {counts}"
    assert _answered(lab, "c2", VIP, 80, n=10) == 10, "the allowed client still gets through"
    lab.apply(("p1", "p2", "p3"))
    eventually(lambda: _reaches(lab, "bad", VIP, 80), timeout=10, what="bad reaches the VIP once allowed")


def test_client_ip_affinity_keeps_each_client_on_one_provider(lab: Lab) -> None:
    """With affinity, every connection of a client (TCP and UDP, 60 each) reaches the same provider;
    its provider removed, the client's next connections all reach one other provider."""
    lab.apply(("p1", "p2", "p3"), affinity=60)
    eventually(lambda: _answered(lab, "c1", VIP, 80) == 1, timeout=10, what="the VIP answers")
    chosen = {}
    for client in ("c1", "c2"):
        for port, proto in ((80, "tcp"), (81, "udp")):
            counts, failed = connect(lab.spaces[client], VIP, port, proto, 60)
            assert failed == 0, counts
            assert len(counts) == 1, f"{client} {proto}: one provider for every connection, got {counts}"
            chosen[(client, proto)] = next(iter(counts))
    gone = chosen[("c1", "tcp")]
    lab.apply(tuple(p for p in ("p1", "p2", "p3") if p != gone), affinity=60)
    counts, failed = connect(lab.spaces["c1"], VIP, 80, "tcp", 60)
    assert failed == 0, counts
    assert len(counts) == 1, counts
    assert gone not in counts, counts


def test_a_provider_reaches_itself_through_the_vip_and_policy_still_applies(lab: Lab) -> None:
    """Hairpin: provider p1 connects to its own service's VIP (TCP and UDP, 30 each); every connection
    is answered, some by p1 itself (SNATed to the VIP in the tenant's hairpin zone, so the reply comes
    back through the switch). A deny from the providers' group to itself ("in" on web from web) then
    stops p1's connections through the VIP, its own included, while another client still gets through."""
    lab.apply(("p1", "p2", "p3"))
    eventually(lambda: _answered(lab, "p1", VIP, 80) == 1, timeout=10, what="the VIP answers p1")
    for port, proto in ((80, "tcp"), (81, "udp")):
        counts, failed = connect(lab.spaces["p1"], VIP, port, proto, 30)
        assert failed == 0, f"{proto}: {failed} of p1's 30 connections through the VIP got no answer: {counts}"
        assert counts["p1"] > 0, f"{proto}: none of 30 landed on p1 itself: {counts}"
    guard = Policy("t1", "guard", (Rule("1", "in", "deny", from_group="web"),))
    lab.apply(("p1", "p2", "p3"), (replace(WEB, policies=("guard",)), BAD), (guard,))
    eventually(lambda: not _reaches(lab, "p1", VIP, 80), timeout=10, what="the deny stops p1 through the VIP")
    for port, proto in ((80, "tcp"), (81, "udp")):
        counts, _ = connect(lab.spaces["p1"], VIP, port, proto, 9, wait=1.5)
        assert not counts, f"{proto}: p1 reached {counts} through the VIP despite web's deny from web"
    assert _answered(lab, "c1", VIP, 80, n=10) == 10, "a client outside web still gets through"


def _round(flow: str) -> int:
    found = re.search(r"cookie=(0x[0-9a-f]+)", flow)
    return cookie_round(int(found.group(1), 16)) if found else -1


def _vip_round_and_learned(lab: Lab, client_ip: str) -> tuple[int, list[str]]:
    """On h1: the cookie round of the TCP VIP flow (0: none), and the affinity flows the switch learned
    for *client_ip* (round 0, SERVICE_AFFINITY)."""
    flows = lab.env.cluster.hosts[0].flows()
    vip = [f for f in flows if f"nw_dst={VIP}" in f and "tp_dst=80" in f and f"table={int(Table.SERVICE_LB)}," in f]
    learned = [f for f in flows if f"table={int(Table.SERVICE_AFFINITY)}," in f and f"nw_src={client_ip}" in f
               and _round(f) == 0]
    return (_round(vip[0]) if vip else 0), learned


def test_client_ip_affinity_survives_an_agent_restart(lab: Lab) -> None:
    """The switch's learned affinity flows outlive the agent: a restarted agent's full sync replaces its
    own flows (a new round) and keeps them, so c1 (on the restarted host) keeps its provider, TCP and UDP."""
    lab.apply(("p1", "p2", "p3"), affinity=300)
    eventually(lambda: _answered(lab, "c2", VIP, 80) == 1, timeout=10, what="the VIP answers")
    chosen = {}
    for port, proto in ((80, "tcp"), (81, "udp")):
        counts, failed = connect(lab.spaces["c1"], VIP, port, proto, 10)
        assert failed == 0, counts
        assert len(counts) == 1, f"{proto}: one provider with affinity, got {counts}"
        chosen[proto] = next(iter(counts))
    before, learned = _vip_round_and_learned(lab, CLIENTS["c1"][0])
    assert len(learned) == 2, learned  # one per service port
    h1 = lab.env.cluster.hosts[0]
    lab.env.cluster.kill_agent(h1)
    lab.env.cluster.start_agent(h1)
    eventually(lambda: _vip_round_and_learned(lab, CLIENTS["c1"][0])[0] not in (0, before), timeout=30,
               what="the restarted agent's full sync (its own flows in a new round)")
    _, kept = _vip_round_and_learned(lab, CLIENTS["c1"][0])
    assert len(kept) == 2, f"learned flows lost in the full sync: {kept}"
    for port, proto in ((80, "tcp"), (81, "udp")):
        counts, failed = connect(lab.spaces["c1"], VIP, port, proto, 20)
        assert failed == 0, counts
        assert dict(counts) == {chosen[proto]: 20}, f"{proto}: c1 had {chosen[proto]}, now {counts}"


def test_hairpin_in_routing_mode_from_another_network(env: ClusterEnv, tmp_path: Path) -> None:
    """Routing fwdMode, the VIP in n1 and its only provider in n2 (both on h1): every connection of the
    provider to the VIP lands on itself, routed there and back through the gateway (its reply goes to
    the router's MAC, not the VIP's); all are answered, TCP and UDP."""
    n1 = Network("t1", "n1", "vxlan", "10.9.0.0/24", vni=9101, gateway="10.9.0.254")
    n2 = Network("t1", "n2", "vxlan", "10.19.0.0/24", vni=9102, gateway="10.19.0.254")
    p, c = env.container("rp"), env.container("rc")
    env.apply(DesiredState(fwd_mode="routing", networks=(n1, n2), endpoints=(
        Endpoint("rp", "t1", "n2", "10.19.0.5", "h1", netns=p), Endpoint("rc", "t1", "n1", "10.9.0.5", "h2", netns=c)),
        services=(Service("t1", "web", VIP, PORTS, ("rp",)),)))
    server = NameServer(p, "rp", TARGET, tmp_path)
    try:
        eventually(lambda: connect(c, VIP, 80, "tcp", 1)[0] == {"rp": 1}, timeout=10, what="a client reaches the VIP")
        for port, proto in ((80, "tcp"), (81, "udp")):
            counts, failed = connect(p, VIP, port, proto, 20)
            assert (dict(counts), failed) == ({"rp": 20}, 0), f"{proto}: the provider through its own VIP"
    finally:
        server.stop()
