"""Contiv's ``links`` and ``link-sets``: the relations shown on every object, derived on read.

Contiv stored these back-references in each object and kept them in sync by hand; we derive them
from the objects themselves, so they can never disagree with what the objects say.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from netmaster.objects.base import Record

Ref = dict[str, str]


def _ref(kind: str, key: str) -> Ref:
    return {"type": kind, "key": key}


class Relations:
    """Index of every object's links, built once from the full object list."""

    def __init__(self, records: list[Record]) -> None:
        self.links: dict[tuple[str, str], dict[str, Ref]] = defaultdict(dict)
        self.sets: dict[tuple[str, str], dict[str, dict[str, Ref]]] = defaultdict(lambda: defaultdict(dict))
        for r in records:
            self._index(r)

    def _link(self, src: Record, name: str, kind: str, key: str) -> None:
        self.links[(src.kind, src.key)][name] = _ref(kind, key)

    def _member(self, owner: tuple[str, str], set_name: str, member: Record) -> None:
        self.sets[owner][set_name][member.key] = _ref(member.kind, member.key)

    def _index(self, r: Record) -> None:
        c = r.config
        tenant = c.get("tenantName")
        plural_in_tenant = {
            "network": "Networks",
            "endpointGroup": "EndpointGroups",
            "policy": "Policies",
            "appProfile": "AppProfiles",
            "netprofile": "NetProfiles",
            "serviceLB": "Servicelbs",
            "extContractsGroup": "ExtContractsGroups",
        }
        if tenant and r.kind in plural_in_tenant:
            self._link(r, "Tenant", "tenant", tenant)
            self._member(("tenant", tenant), plural_in_tenant[r.kind], r)
        if r.kind == "endpointGroup":
            net = f"{tenant}:{c['networkName']}"
            self._link(r, "Network", "network", net)
            self._member(("network", net), "EndpointGroups", r)
            if c["netProfile"]:
                prof = f"{tenant}:{c['netProfile']}"
                self._link(r, "NetProfile", "netprofile", prof)
                self._member(("netprofile", prof), "EndpointGroups", r)
            for policy in c["policies"]:
                key = f"{tenant}:{policy}"
                self.sets[(r.kind, r.key)]["Policies"][key] = _ref("policy", key)
                self._member(("policy", key), "EndpointGroups", r)
            for group in c["extContractsGrps"]:
                key = f"{tenant}:{group}"
                self.sets[(r.kind, r.key)]["ExtContractsGrps"][key] = _ref("extContractsGroup", key)
                self._member(("extContractsGroup", key), "EndpointGroups", r)
        elif r.kind == "rule":
            policy = f"{tenant}:{c['policyName']}"
            self.sets[(r.kind, r.key)]["Policies"][policy] = _ref("policy", policy)
            self._member(("policy", policy), "Rules", r)
        elif r.kind == "appProfile":
            for group in c["endpointGroups"]:
                key = f"{tenant}:{group}"
                self.sets[(r.kind, r.key)]["EndpointGroups"][key] = _ref("endpointGroup", key)
                self.links[("endpointGroup", key)]["AppProfile"] = _ref("appProfile", r.key)
        elif r.kind == "serviceLB":
            net = f"{tenant}:{c['networkName']}"
            self._link(r, "Network", "network", net)
            self._member(("network", net), "Servicelbs", r)

    def decorate(self, record: Record) -> dict[str, Any]:
        """The object as Contiv's GET returned it: config, ``key``, ``links``, ``link-sets``."""
        out: dict[str, Any] = {"key": record.key, **record.config}
        if record.status.get("source"):
            # Who made the object when it was not a user (a tenant imported from the APIC): read-only,
            # ignored when sent back (catalog._SERVER_KEYS).
            out["source"] = record.status["source"]
        links = self.links.get((record.kind, record.key))
        if links:
            out["links"] = dict(links)
        sets = self.sets.get((record.kind, record.key))
        if sets:
            out["link-sets"] = {name: dict(members) for name, members in sets.items()}
        return out
