"""Service discovery with real DNS queries from containers: agents run with --dns on a two-host cluster;
queries to any address on port 53 are redirected by flows to the agent's responder, which answers
within the asker's tenant and forwards other names to the host's resolver (a stand-in on each host)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest

from agent.state import DesiredState, Endpoint, EndpointGroup, Host, Network, Service, ServicePort
from testbed.cluster import Cluster, in_ns
from testbed.cluster.prereq import running
from testbed.dnscheck import OUTSIDE_ADDRESS, OUTSIDE_NAME, query, start_upstream
from tests.agent.conftest import next_revision, requires_datapath

pytestmark = requires_datapath

T1 = Network("t1", "net", "vxlan", "10.10.0.0/24", vni=10100, gateway="10.10.0.254")
T2 = Network("t2", "net", "vxlan", "10.10.0.0/24", vni=10200, gateway="10.10.0.254")  # same subnet
VIP = "10.10.0.100"
RESOLVER = "10.10.0.254"  # what the containers ask; any address would do (the flows redirect port 53)
UPSTREAM_PORT = 5300


class DnsCluster(Cluster):
    """A cluster whose agents answer DNS, each forwarding to a stand-in resolver in its host."""

    def start_agent(self, host, extra: tuple[str, ...] = ()) -> None:  # type: ignore[no-untyped-def]
        if not any(f"upstream-{host.netns}" in str(p) for p in self.pids):
            proc = start_upstream(host.netns, UPSTREAM_PORT, host.rundir)
            self.pids.append(proc.pid)
        super().start_agent(host, ("--dns", "--dns-upstream", f"127.0.0.1:{UPSTREAM_PORT}", *extra))


@pytest.fixture(scope="module")
def dns_cluster() -> Iterator[Cluster]:
    yield from running(DnsCluster(n_hosts=2))


def _state(cluster: Cluster, spaces: dict[str, str], extra: tuple[Endpoint, ...] = ()) -> DesiredState:
    eps = (Endpoint("a", "t1", "net", "10.10.0.1", "h1", group="web", netns=spaces["a"], name="alpha"),
           Endpoint("b", "t1", "net", "10.10.0.2", "h2", group="web", netns=spaces["b"], name="beta"),
           Endpoint("c", "t1", "net", "10.10.0.3", "h1", netns=spaces["c"], name="client"),
           Endpoint("x", "t2", "net", "10.10.0.7", "h1", netns=spaces["x"], name="xray"), *extra)
    return DesiredState(networks=(T1, T2), groups=(EndpointGroup("t1", "web", 41, "net"),), endpoints=eps,
                        services=(Service("t1", "www", VIP, (ServicePort(80, 8080, "tcp"),), ("a", "b")),),
                        hosts=tuple(Host(h.name, h.vtep_ip) for h in cluster.hosts), revision=next_revision())


@pytest.fixture
def spaces(dns_cluster: Cluster) -> Iterator[dict[str, str]]:
    names = {n: dns_cluster.container(n) for n in ("a", "b", "c", "x", "g")}
    for ns in names.values():
        in_ns(ns, "ip", "route", "add", "default", "via", RESOLVER, check=False)
    try:
        yield names
    finally:
        dns_cluster.apply(DesiredState(hosts=(), revision=next_revision()))
        for ns in names.values():
            dns_cluster.remove_container(ns)


def _a(ns: str, name: str, tcp: bool = False) -> tuple[str, list[str]]:
    got = query(ns, name, "A", RESOLVER, tcp=tcp)
    return str(got["rcode"]), sorted(got.get("answers", []))


def test_names_resolve_within_the_askers_tenant(dns_cluster: Cluster, spaces: dict[str, str]) -> None:
    dns_cluster.apply(_state(dns_cluster, spaces))
    c, x = spaces["c"], spaces["x"]
    assert _a(c, "www") == ("NOERROR", [VIP])
    assert _a(c, "www.t1.contiv") == ("NOERROR", [VIP])
    assert _a(c, "alpha") == ("NOERROR", ["10.10.0.1"])
    assert _a(c, "Beta.T1") == ("NOERROR", ["10.10.0.2"])
    assert _a(c, "web") == ("NOERROR", ["10.10.0.1", "10.10.0.2"])
    assert _a(c, "www", tcp=True) == ("NOERROR", [VIP])
    srv = query(c, "_80._tcp.www.t1.contiv", "SRV", RESOLVER)
    assert (srv["rcode"], srv["answers"]) == ("NOERROR", ["80 www.t1.contiv."])
    ptr = query(c, "1.0.10.10.in-addr.arpa", "PTR", RESOLVER)
    assert (ptr["rcode"], ptr["answers"]) == ("NOERROR", ["alpha.t1.contiv."])
    assert max(query(c, "alpha", "A", RESOLVER)["ttl"]) <= 5
    # another tenant's names, from either side, in any spelling: not answered
    assert _a(c, "xray.t2.contiv") == ("NXDOMAIN", [])
    assert _a(c, "xray") == ("NXDOMAIN", [])  # not ours: forwarded, and the host's resolver does not know it
    assert _a(x, "xray") == ("NOERROR", ["10.10.0.7"])
    assert _a(x, "www") == ("NXDOMAIN", [])
    assert _a(x, "www.t1.contiv") == ("NXDOMAIN", [])
    # other names go to the host's resolvers
    assert _a(c, OUTSIDE_NAME) == ("NOERROR", [OUTSIDE_ADDRESS])
    dns = dns_cluster.hosts[0].get("/inspect/driver")[1]["dns"]
    assert dns["addresses"] == {"169.254.53.1": "t1", "169.254.53.2": "t2"}
    assert dns["queries"] > 0
    assert dns["forwarded"] > 0
    # a repeated query is answered from the kept reply, with its own id and the same answer
    assert _a(c, "alpha") == ("NOERROR", ["10.10.0.1"])
    kept = dns_cluster.hosts[0].get("/inspect/driver")[1]["dns"]["kept"]
    assert kept > dns["kept"], (kept, dns["kept"])
    # a standard client (busybox nslookup) gets the same answer
    out = in_ns(c, "busybox", "nslookup", "www.t1.contiv", RESOLVER, check=False).stdout
    assert VIP in out, out


def test_names_follow_endpoints(dns_cluster: Cluster, spaces: dict[str, str]) -> None:
    """A name answers as soon as the agents applied the endpoint's state, and stops as soon as they
    applied its deletion (the records change in the same reconcile as the flows)."""
    state = _state(dns_cluster, spaces)
    dns_cluster.apply(state)
    assert _a(spaces["c"], "gamma") == ("NXDOMAIN", [])
    gamma = Endpoint("g", "t1", "net", "10.10.0.9", "h2", netns=spaces["g"], name="gamma")
    dns_cluster.apply(_state(dns_cluster, spaces, (gamma,)))
    assert _a(spaces["c"], "gamma") == ("NOERROR", ["10.10.0.9"])
    dns_cluster.apply(replace(state, revision=next_revision()))
    assert _a(spaces["c"], "gamma") == ("NXDOMAIN", [])


def test_tenant_address_is_not_reachable_except_on_port_53(dns_cluster: Cluster, spaces: dict[str, str]) -> None:
    """The responder's addresses are reached only through the redirect: a container sending straight to
    one (another port, or the other tenant's address) gets nothing, and a query straight to the other
    tenant's responder address is answered as its own tenant (it is redirected to its own)."""
    dns_cluster.apply(_state(dns_cluster, spaces))
    c = spaces["c"]
    ping = in_ns(c, "ping", "-c", "1", "-W", "1", "169.254.53.1", check=False)
    assert ping.returncode != 0, ping.stdout
    for address in ("169.254.53.1", "169.254.53.2"):
        got = query(c, "xray", "A", address)
        assert (got["rcode"], got.get("answers")) != ("NOERROR", ["10.10.0.7"]), got
