"""Read-only views of what the APIC holds: tenants with VRFs, bridge domains, application profiles,
contracts and filters, as plain JSON for netmaster and operators.

Each view is computed from one APIC read (a tenant subtree or a class query), and says for every object
whether the gateway manages it, so an operator can see at a glance what a delete would touch.
"""

from __future__ import annotations

from typing import Any

from aci_gw.apic import ApicClient
from aci_gw.mo import Mo
from aci_gw.ownership import is_owned, owner_app

TENANT_SECTIONS = ("vrfs", "bridge-domains", "app-profiles", "contracts", "filters")
_SUMMARY_CLASSES = (
    "fvCtx", "fvBD", "fvRsCtx", "fvSubnet", "fvAp", "fvAEPg", "fvRsBd", "fvRsDomAtt", "fvRsNodeAtt",
    "fvRsPathAtt", "fvRsProv", "fvRsCons",
)


def _base(mo: Mo) -> dict[str, Any]:
    out: dict[str, Any] = {"name": mo.attrs.get("name", ""), "managed": is_owned(mo)}
    if owner_app(mo):
        out["appProfile"] = owner_app(mo)
    return out


def _targets(mo: Mo, cls: str, attr: str) -> list[str]:
    return sorted(c.attrs.get(attr, "") for c in mo.children_of(cls))


def _bd(mo: Mo) -> dict[str, Any]:
    vrf = _targets(mo, "fvRsCtx", "tnFvCtxName")
    return {**_base(mo), "vrf": vrf[0] if vrf else "", "subnets": _targets(mo, "fvSubnet", "ip")}


def _epg(mo: Mo) -> dict[str, Any]:
    bd = _targets(mo, "fvRsBd", "tnFvBDName")
    encaps = sorted({c.attrs.get("encap", "") for c in mo.children
                     if c.cls in ("fvRsNodeAtt", "fvRsPathAtt", "fvRsDomAtt")
                     and c.attrs.get("encap", "unknown") != "unknown"})
    return {
        **_base(mo),
        "bridgeDomain": bd[0] if bd else "",
        "encap": encaps,
        "domains": _targets(mo, "fvRsDomAtt", "tDn"),
        "provides": _targets(mo, "fvRsProv", "tnVzBrCPName"),
        "consumes": _targets(mo, "fvRsCons", "tnVzBrCPName"),
    }


def _contract(mo: Mo, tenant: str) -> dict[str, Any]:
    subjects = [
        {"name": s.attrs.get("name", ""), "filters": _targets(s, "vzRsSubjFiltAtt", "tnVzFilterName")}
        for s in mo.children_of("vzSubj")
    ]
    return {**_base(mo), "dn": f"uni/tn-{tenant}/{mo.rn}", "scope": mo.attrs.get("scope", "context"),
            "subjects": subjects}


def _filter(mo: Mo) -> dict[str, Any]:
    keys = ("etherT", "prot", "dFromPort", "dToPort")
    entries = [{"name": e.attrs.get("name", ""), **{k: e.attrs[k] for k in keys if k in e.attrs}}
               for e in mo.children_of("vzEntry")]
    return {**_base(mo), "entries": entries}


def tenant_view(mo: Mo, full: bool = True) -> dict[str, Any]:
    name = mo.attrs.get("name", "")
    view: dict[str, Any] = {
        **_base(mo),
        "dn": f"uni/tn-{name}",
        "vrfs": [_base(c) for c in mo.children_of("fvCtx")],
        "bridge-domains": [_bd(c) for c in mo.children_of("fvBD")],
        "app-profiles": [{**_base(ap), "epgs": [_epg(e) for e in ap.children_of("fvAEPg")]}
                         for ap in mo.children_of("fvAp")],
    }
    if full:
        view["contracts"] = [_contract(c, name) for c in mo.children_of("vzBrCP")]
        view["filters"] = [_filter(c) for c in mo.children_of("vzFilter")]
    return view


def list_tenants(client: ApicClient) -> list[dict[str, Any]]:
    tenants = client.class_query("fvTenant", subtree="full", classes=_SUMMARY_CLASSES)
    return sorted((tenant_view(t, full=False) for t in tenants), key=lambda t: t["name"])


def get_tenant(client: ApicClient, name: str) -> dict[str, Any] | None:
    mo = client.read(f"uni/tn-{name}")
    return tenant_view(mo) if mo is not None else None


def list_contracts(client: ApicClient) -> list[dict[str, Any]]:
    """Every contract in the fabric, e.g. to pick external contracts by DN."""
    out = []
    for mo in client.class_query("vzBrCP"):
        dn = mo.attrs.get("dn", "")
        tenant = dn.split("/")[1][3:] if dn.startswith("uni/tn-") else ""
        out.append({**_base(mo), "dn": dn, "tenant": tenant, "scope": mo.attrs.get("scope", "context")})
    return sorted(out, key=lambda c: c["dn"])
