"""Per-host span: which endpoints an agent's host needs (Antrea's span computation, at network grain).

Every agent needs every config object (they are small) but only some endpoints: with a thousand
hosts, sending every endpoint to every host costs netmaster a thousand lines per endpoint create.
What a host's pipeline uses of remote endpoints (agent/pipeline/):

- L2 forwarding, ARP answers, flooding (peer VTEPs): endpoints of the *networks* it has endpoints on;
- the source and destination EPG lookups of policy: endpoints of the groups its local groups' rules
  name, which may be on any network of the tenant; routing fwdMode: every network of the tenant; ACI
  mode: other EPGs' MACs of the tenant.

So the span of host H is the networks H has endpoints on (plus those it ever had, below), widened to
the whole tenant when the tenant is *wide*: fwdMode routing, ACI infra, or a rule of the tenant that
names a group. Tenants are the isolation unit (a VRF each; rules never cross tenants), so a wide
tenant's endpoints are all a host of it can need.

Networks a host ever had endpoints on are kept in its span (a record ``/contiv/span/<host>``, written
by the endpoint create that first puts the host on a network, never removed): the span only grows
while netmaster runs, so a stream never has to take endpoints back, and a host whose endpoints were
collected by endpoint GC during a partition keeps receiving its peers until its agent re-claims them
(the agent forwards from its local records meanwhile: its peers must stay). The cost: a host that
left a network keeps its events until the network is deleted. The span is a pure function of the
stored state, so every netmaster computes the same one for a snapshot and for a resumed watch.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from netmaster.store import keys

RULE = keys.obj("rule")
GLOBAL = keys.obj("global")


def tenant_of(network: str) -> str:
    """The tenant of a network key ``tenant:network`` (tenant names have no colon)."""
    return network.partition(":")[0]


@dataclass(frozen=True, slots=True)
class EndpointMeta:
    """What the span needs of an endpoint record."""

    tenant: str
    network: str  # the network's key, tenant:network
    host: str


def endpoint_meta(record: dict[str, Any]) -> EndpointMeta:
    tenant = record.get("tenantName") or "default"
    return EndpointMeta(tenant, f"{tenant}:{record.get('networkName', '')}", record.get("host", ""))


@dataclass(frozen=True)
class Span:
    """The endpoints one host receives: those of ``networks``, and every one of ``tenants``."""

    networks: frozenset[str] = frozenset()
    tenants: frozenset[str] = frozenset()

    def covers(self, meta: EndpointMeta) -> bool:
        return meta.network in self.networks or meta.tenant in self.tenants

    def covers_network(self, network: str) -> bool:
        return network in self.networks or tenant_of(network) in self.tenants

    def within(self, other: Span) -> bool:
        """Everything this span covers, ``other`` covers too."""
        return all(n in other.networks or tenant_of(n) in other.tenants for n in self.networks) and (
            self.tenants <= other.tenants
        )

    def routes(self) -> set[tuple[str, str]]:
        """The keys a watcher with this span is reached by: one per endpoint at most (a network of a
        covered tenant is reached through its tenant)."""
        return {("t", t) for t in self.tenants} | {("n", n) for n in self.networks if tenant_of(n) not in self.tenants}


@dataclass
class SpanChange:
    """What one event did to spans: the hosts whose span changed, or ``every`` host's may have."""

    hosts: set[str] = field(default_factory=set)
    every: bool = False

    def __bool__(self) -> bool:
        return self.every or bool(self.hosts)


class SpanIndex:
    """The endpoints by network and host, the hosts' span records and which tenants are wide; fed
    event by event (by :class:`netmaster.api.watch.WatchHub`) at the cache's revision."""

    def __init__(self, *, network_grain: bool = True) -> None:
        # False (netmaster's default, --agent-span tenant): every tenant is wide, because agent features
        # netmaster cannot see (DNS names of the tenant's containers, service providers and Kubernetes
        # policies by label) need the whole tenant.
        self.network_grain = network_grain
        self.clear()

    def clear(self) -> None:
        self.endpoints: dict[str, EndpointMeta] = {}
        self.members: dict[str, set[str]] = {}  # network -> endpoint keys
        self.tenant_networks: dict[str, set[str]] = {}  # tenant -> networks that have endpoints
        self.local: dict[str, Counter[str]] = {}  # host -> network -> endpoints of the host there
        self.kept: dict[str, frozenset[str]] = {}  # host -> its span record's networks
        self.group_rules: dict[str, str] = {}  # key of a rule naming a group -> its tenant
        self.wide_tenants: Counter[str] = Counter()  # tenant -> rules naming a group
        self.global_wide = False  # fwdMode routing or ACI infra: every tenant is wide

    def wide(self, tenant: str) -> bool:
        return not self.network_grain or self.global_wide or self.wide_tenants[tenant] > 0

    def span(self, host: str) -> Span:
        networks = self.kept.get(host, frozenset()) | {n for n, c in self.local.get(host, Counter()).items() if c > 0}
        tenants = frozenset(t for t in {tenant_of(n) for n in networks} if self.wide(t))
        return Span(frozenset(networks), tenants)

    def covered_networks(self, span: Span) -> Iterator[str]:
        """The networks with endpoints whose endpoints ``span`` covers (each once)."""
        for tenant in span.tenants:
            yield from self.tenant_networks.get(tenant, ())
        for network in span.networks:
            if tenant_of(network) not in span.tenants and network in self.members:
                yield network

    def covered(self, span: Span) -> Iterator[str]:
        """Keys of the endpoints ``span`` covers (each once)."""
        for network in self.covered_networks(span):
            yield from self.members.get(network, ())

    def newly_covered_networks(self, old: Span, new: Span) -> list[str]:
        """The networks with endpoints that ``new`` covers and ``old`` does not: a widened span costs
        the networks it gained, not every endpoint it covers."""
        return [n for n in self.covered_networks(new) if not old.covers_network(n)]

    def newly_covered(self, old: Span, new: Span) -> Iterator[str]:
        """Keys of the endpoints ``new`` covers and ``old`` does not."""
        for network in self.newly_covered_networks(old, new):
            yield from self.members.get(network, ())

    # -- feeding ---------------------------------------------------------------------------------------

    def load(self, items: Iterable[tuple[str, Any]]) -> None:
        """Start over from every (store key, parsed value) of the state."""
        self.clear()
        for key, value in items:
            self.apply(key, value)

    def apply(self, key: str, value: Any) -> SpanChange:
        """One put (``value`` parsed) or delete (``value`` None) of a store key."""
        if key.startswith(keys.EP):
            return self._endpoint(key[len(keys.EP) :], value)
        if key.startswith(keys.SPAN):
            host = key[len(keys.SPAN) :]
            return self._host_changed(host, lambda: self._keep(host, value))
        if key.startswith(RULE):
            return self._rule(key, value)
        if key.startswith(GLOBAL):
            cfg = (value or {}).get("config", {})
            wide = cfg.get("fwdMode") == "routing" or cfg.get("networkInfraType") == "aci"
            changed, self.global_wide = wide != self.global_wide, wide
            return SpanChange(every=changed)
        return SpanChange()

    def _keep(self, host: str, value: Any) -> None:
        if value is None:
            self.kept.pop(host, None)
        else:
            self.kept[host] = frozenset(value.get("networks") or ())

    def _host_changed(self, host: str, change: Any) -> SpanChange:
        before = self.span(host)
        change()
        return SpanChange({host} if self.span(host) != before else set())

    def _endpoint(self, ep_key: str, value: Any) -> SpanChange:
        old = self.endpoints.get(ep_key)
        new = endpoint_meta(value) if value is not None else None
        if old == new:
            return SpanChange()
        hosts = {m.host for m in (old, new) if m is not None and m.host}
        before = {h: self.span(h) for h in hosts}
        if old is not None:
            self._remove(ep_key, old)
        if new is not None:
            self._add(ep_key, new)
        return SpanChange({h for h in hosts if self.span(h) != before[h]})

    def _add(self, ep_key: str, meta: EndpointMeta) -> None:
        self.endpoints[ep_key] = meta
        self.members.setdefault(meta.network, set()).add(ep_key)
        self.tenant_networks.setdefault(meta.tenant, set()).add(meta.network)
        if meta.host:
            self.local.setdefault(meta.host, Counter())[meta.network] += 1

    def _remove(self, ep_key: str, meta: EndpointMeta) -> None:
        del self.endpoints[ep_key]
        members = self.members[meta.network]
        members.discard(ep_key)
        if not members:
            del self.members[meta.network]
            self.tenant_networks[meta.tenant].discard(meta.network)
        if meta.host:
            counts = self.local[meta.host]
            counts[meta.network] -= 1
            if counts[meta.network] <= 0:
                del counts[meta.network]

    def _rule(self, key: str, value: Any) -> SpanChange:
        cfg = (value or {}).get("config", {})
        names_group = value is not None and bool(cfg.get("fromEndpointGroup") or cfg.get("toEndpointGroup"))
        old = self.group_rules.get(key)
        new = (cfg.get("tenantName") or "default") if names_group else None
        if old == new:
            return SpanChange()
        affected = {t for t in (old, new) if t is not None}
        before = {t: self.wide(t) for t in affected}
        if old is not None:
            self.wide_tenants[old] -= 1
            del self.group_rules[key]
        if new is not None:
            self.wide_tenants[new] += 1
            self.group_rules[key] = new
        return SpanChange(every=any(self.wide(t) != before[t] for t in affected))
