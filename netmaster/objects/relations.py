"""Contiv's ``links`` and ``link-sets``: the relations shown on every object, kept as an index.

Contiv stored these back-references in each object and kept them in sync by hand; we derive them
from the objects themselves, so they can never disagree with what the objects say. The index is
maintained incrementally (:meth:`RelationIndex.put`, :meth:`RelationIndex.remove`): each object
remembers what it contributed, so a change costs the object's own relations, and decorating an
object for a read costs its own links, whatever the number of objects.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, NamedTuple

from netmaster.objects.base import Record

Ref = dict[str, str]
Node = tuple[str, str]  # (kind, key)

_PLURAL_IN_TENANT = {
    "network": "Networks",
    "endpointGroup": "EndpointGroups",
    "policy": "Policies",
    "appProfile": "AppProfiles",
    "netprofile": "NetProfiles",
    "serviceLB": "Servicelbs",
    "extContractsGroup": "ExtContractsGroups",
}


class _Contribution(NamedTuple):
    target: Node
    link: str | None  # a link name, or None for a link-set member
    set_name: str
    member: str  # link-sets: the member's key
    ref: tuple[str, str]  # (type, key)


def _contributions(r: Record) -> list[_Contribution]:
    """What ``r`` adds to the relations of itself and of the objects it names."""
    out: list[_Contribution] = []
    me: Node = (r.kind, r.key)

    def link(target: Node, name: str, kind: str, key: str) -> None:
        out.append(_Contribution(target, name, "", "", (kind, key)))

    def member(target: Node, set_name: str, kind: str, key: str) -> None:
        out.append(_Contribution(target, None, set_name, key, (kind, key)))

    c = r.config
    tenant = c.get("tenantName")
    if tenant and r.kind in _PLURAL_IN_TENANT:
        link(me, "Tenant", "tenant", tenant)
        member(("tenant", tenant), _PLURAL_IN_TENANT[r.kind], r.kind, r.key)
    if r.kind == "endpointGroup":
        net = f"{tenant}:{c['networkName']}"
        link(me, "Network", "network", net)
        member(("network", net), "EndpointGroups", r.kind, r.key)
        if c["netProfile"]:
            prof = f"{tenant}:{c['netProfile']}"
            link(me, "NetProfile", "netprofile", prof)
            member(("netprofile", prof), "EndpointGroups", r.kind, r.key)
        for policy in c["policies"]:
            key = f"{tenant}:{policy}"
            member(me, "Policies", "policy", key)
            member(("policy", key), "EndpointGroups", r.kind, r.key)
        for group in c["extContractsGrps"]:
            key = f"{tenant}:{group}"
            member(me, "ExtContractsGrps", "extContractsGroup", key)
            member(("extContractsGroup", key), "EndpointGroups", r.kind, r.key)
    elif r.kind == "rule":
        policy = f"{tenant}:{c['policyName']}"
        member(me, "Policies", "policy", policy)
        member(("policy", policy), "Rules", r.kind, r.key)
    elif r.kind == "appProfile":
        for group in c["endpointGroups"]:
            key = f"{tenant}:{group}"
            member(me, "EndpointGroups", "endpointGroup", key)
            link(("endpointGroup", key), "AppProfile", "appProfile", r.key)
    elif r.kind == "serviceLB":
        net = f"{tenant}:{c['networkName']}"
        link(me, "Network", "network", net)
        member(("network", net), "Servicelbs", r.kind, r.key)
    return out


class RelationIndex:
    """Every object's links and link-sets, updated object by object."""

    def __init__(self) -> None:
        # target -> link name -> contributing object -> ref (the last contributor's ref is shown)
        self._links: dict[Node, dict[str, dict[Node, tuple[str, str]]]] = defaultdict(dict)
        # target -> set name -> member key -> contributing objects -> ref
        self._sets: dict[Node, dict[str, dict[str, dict[Node, tuple[str, str]]]]] = defaultdict(dict)
        self._made: dict[Node, list[_Contribution]] = {}

    def put(self, record: Record) -> set[Node]:
        """Index ``record`` (replacing what it said before); every object whose relations may change."""
        source: Node = (record.kind, record.key)
        touched = self.remove(record.kind, record.key)
        made = _contributions(record)
        touched.update(c.target for c in made)
        for c in made:
            if c.link is not None:
                self._links[c.target].setdefault(c.link, {})[source] = c.ref
            else:
                self._sets[c.target].setdefault(c.set_name, {}).setdefault(c.member, {})[source] = c.ref
        if made:
            self._made[source] = made
        return touched

    def remove(self, kind: str, key: str) -> set[Node]:
        """Forget what the object said; every object whose relations may change."""
        source: Node = (kind, key)
        made = self._made.pop(source, ())
        for c in made:
            if c.link is not None:
                holders = self._links[c.target]
                sources = holders[c.link]
                sources.pop(source, None)
                if not sources:
                    del holders[c.link]
                    if not holders:
                        del self._links[c.target]
            else:
                sets = self._sets[c.target]
                members = sets[c.set_name]
                sources = members[c.member]
                sources.pop(source, None)
                if not sources:
                    del members[c.member]
                    if not members:
                        del sets[c.set_name]
                        if not sets:
                            del self._sets[c.target]
        return {source, *(c.target for c in made)}

    def clear(self) -> None:
        self._links.clear()
        self._sets.clear()
        self._made.clear()

    def decorate(self, record: Record) -> dict[str, Any]:
        """The object as Contiv's GET returned it: config, ``key``, ``links``, ``link-sets``."""
        out: dict[str, Any] = {"key": record.key, **record.config}
        if record.status.get("source"):
            # Who made the object when it was not a user (a tenant imported from the APIC): read-only,
            # ignored when sent back (catalog._SERVER_KEYS).
            out["source"] = record.status["source"]
        node: Node = (record.kind, record.key)
        links = self._links.get(node)
        if links:
            out["links"] = {name: _ref(*list(links[name].values())[-1]) for name in sorted(links)}
        sets = self._sets.get(node)
        if sets:
            # Sorted, so the answer does not depend on the order the objects were made in.
            out["link-sets"] = {
                name: {k: _ref(*next(iter(sets[name][k].values()))) for k in sorted(sets[name])}
                for name in sorted(sets)
            }
        return out


def _ref(kind: str, key: str) -> Ref:
    return {"type": kind, "key": key}
