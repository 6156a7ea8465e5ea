"""Contiv's aci-gw v1.2 app-profile payload, built from netmaster's objects (reference contiv.md §6.2, §6.3).

The builder is a pure function of an :class:`ObjectView` (objects by kind and key), so the
reconciler can recompute every profile's payload after any change and push only those whose payload
(hash) changed: this is what makes "a change to a rule re-pushes exactly the profiles using it" true
without tracking dependencies by hand.

Contract derivation, as Contiv's netmaster did it: for each policy attached to an EPG of the profile,
each *allow* rule (deny rules are ignored; the fabric's default is deny) adds a filter entry
``{protocol, servport}`` to the contract

* ``<policy>Frm<fromEPG>`` when the rule names a from-EPG: the owning EPG provides it, the from-EPG
  consumes it;
* ``<policy>To<toEPG>`` when it names a to-EPG: the owning EPG consumes it, the to-EPG provides it;
* ``<policy>Expose`` otherwise: the owning EPG provides it.

A referenced EPG outside the profile gets no link (the payload can only carry the profile's EPGs).
External contracts groups add EXTERNAL links by DN (``consumed`` → CONSUME, ``provided`` → PROVIDE).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from contiv_api.aci_gw_payload import API_VERSION, PayloadError, parse_app_profile

#: kind -> key -> {"config": ..., "status": ...}: the objects as stored (see netmaster.store.keys).
Objects = Mapping[str, Mapping[str, Mapping[str, Any]]]


class BuildError(ValueError):
    """The profile cannot be expressed as a payload (a referenced object is missing, or aci-gw's own
    validation refuses it); ``str()`` is the reason shown in the profile's push state."""


@dataclass
class ObjectView:
    """Read access to netmaster's objects by kind and key, whatever holds them (cache or snapshot)."""

    objects: Objects

    def config(self, kind: str, key: str) -> dict[str, Any] | None:
        record = self.objects.get(kind, {}).get(key)
        return dict(record["config"]) if record else None

    def status(self, kind: str, key: str) -> dict[str, Any]:
        record = self.objects.get(kind, {}).get(key)
        return dict(record["status"]) if record else {}

    def of_tenant(self, kind: str, tenant: str) -> list[tuple[str, dict[str, Any]]]:
        prefix = f"{tenant}:"
        items = self.objects.get(kind, {})
        return sorted((k, dict(v["config"])) for k, v in items.items() if k.startswith(prefix))


@dataclass
class _Contracts:
    """Contract definitions and per-EPG links, in a deterministic order (the payload hash depends on it)."""

    filters: dict[str, list[dict[str, str]]] = field(default_factory=dict)
    links: dict[str, list[dict[str, str]]] = field(default_factory=dict)

    def entry(self, contract: str, protocol: str, port: int) -> None:
        item = {"protocol": protocol, "servport": str(port) if port and protocol in ("tcp", "udp") else ""}
        entries = self.filters.setdefault(contract, [])
        if item not in entries:
            entries.append(item)

    def link(self, epg: str, kind: str, contract_kind: str, name: str, dn: str = "") -> None:
        item = {"link-kind": kind, "contract-kind": contract_kind, "contract-name": name, "contract-dn": dn}
        links = self.links.setdefault(epg, [])
        if item not in links:
            links.append(item)


def gw_cidr(network: Mapping[str, Any]) -> str:
    """``gateway/len`` of a network (the bridge domain's subnet); empty for a network without gateway."""
    gateway = network.get("gateway") or ""
    if not gateway:
        return ""
    return f"{gateway}/{str(network['subnet']).rsplit('/', 1)[1]}"


def _derive_contracts(view: ObjectView, tenant: str, groups: list[str]) -> _Contracts:
    members = set(groups)
    rules = view.of_tenant("rule", tenant)
    out = _Contracts()
    for group in groups:
        epg = view.config("endpointGroup", f"{tenant}:{group}") or {}
        for policy in epg.get("policies", []):
            for _, rule in rules:
                if rule["policyName"] != policy or rule["action"] != "allow":
                    continue
                source, target = rule.get("fromEndpointGroup", ""), rule.get("toEndpointGroup", "")
                if source:
                    name = f"{policy}Frm{source}"
                    out.link(group, "PROVIDE", "INTERNAL", name)
                    if source in members:
                        out.link(source, "CONSUME", "INTERNAL", name)
                elif target:
                    name = f"{policy}To{target}"
                    out.link(group, "CONSUME", "INTERNAL", name)
                    if target in members:
                        out.link(target, "PROVIDE", "INTERNAL", name)
                else:
                    name = f"{policy}Expose"
                    out.link(group, "PROVIDE", "INTERNAL", name)
                out.entry(name, rule.get("protocol", ""), int(rule.get("port") or 0))
        for group_name in epg.get("extContractsGrps", []):
            ext = view.config("extContractsGroup", f"{tenant}:{group_name}")
            if ext is None:
                raise BuildError(f"external contracts group {tenant}:{group_name} not found")
            kind = "CONSUME" if ext["contractsType"] == "consumed" else "PROVIDE"
            for dn in ext["contracts"]:
                out.link(group, kind, "EXTERNAL", dn.rsplit("/brc-", 1)[-1], dn)
    return out


def build_payload(view: ObjectView, app_profile_key: str) -> dict[str, Any]:
    """The /createAppProf body for one app profile; :class:`BuildError` when it cannot be built.

    The result passed aci-gw's own validation (:func:`contiv_api.aci_gw_payload.parse_app_profile`), so a
    payload the gateway would refuse is reported here, with the same words, without a request.
    """
    profile = view.config("appProfile", app_profile_key)
    if profile is None:
        raise BuildError(f"app profile {app_profile_key} not found")
    tenant, groups = profile["tenantName"], list(profile["endpointGroups"])
    contracts = _derive_contracts(view, tenant, groups)
    epgs = []
    for group in groups:
        epg = view.config("endpointGroup", f"{tenant}:{group}")
        if epg is None:
            raise BuildError(f"EndpointGroup {tenant}:{group} not found")
        network = view.config("network", f"{tenant}:{epg['networkName']}")
        if network is None:
            raise BuildError(f"network {tenant}:{epg['networkName']} of EPG {group} not found")
        status = view.status("endpointGroup", f"{tenant}:{group}")
        vlan = status.get("aciVlan") or status.get("pktTag")
        if not vlan:
            raise BuildError(f"EPG {group} has no VLAN (created before ACI mode?)")
        epgs.append(
            {
                "name": group,
                "nw-name": epg["networkName"],
                "gw-cidr": gw_cidr(network),
                "vlan-tag": str(vlan),
                "contract-links": contracts.links.get(group, []),
            }
        )
    payload: dict[str, Any] = {
        "aci-gw-api-version": API_VERSION,
        "tenant": tenant,
        "app-prof": profile["appProfileName"],
        "epgs": epgs,
        "contract-defs": [{"name": n, "filter-info": f} for n, f in contracts.filters.items()],
    }
    gw = view.config("aciGw", "aciGw")
    if gw is not None:
        payload["gw-config"] = {"key": "aciGw", **gw}
    try:
        parse_app_profile(payload)
    except PayloadError as exc:
        raise BuildError(f"aci-gw would refuse the payload: {exc}") from None
    return payload


def delete_payload(app_profile_key: str) -> dict[str, str]:
    """The /deleteAppProf body: tenant and app profile name are all the gateway needs."""
    tenant, _, app = app_profile_key.partition(":")
    return {"tenant": tenant, "app-prof": app}


def payload_hash(payload: Mapping[str, Any]) -> str:
    """A short stable digest: equal payloads, equal hashes (keys sorted), so unchanged profiles are skipped."""
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]
