"""Builders for Contiv aci-gw v1.2 payloads, shaped as netmaster sends them (reference contiv.md §6.2)."""

from __future__ import annotations

from typing import Any

PHYS_DOMAIN = "contiv-phys"
LEAF = "topology/pod-1/node-101"
PATH = "topology/pod-1/paths-102/pathep-[eth1/5]"


def link(kind: str, name: str = "", dn: str = "", external: bool = False) -> dict[str, str]:
    return {
        "link-kind": kind,
        "contract-kind": "EXTERNAL" if external else "INTERNAL",
        "contract-name": name,
        "contract-dn": dn,
    }


def epg(name: str, vlan: int, network: str = "net1", gw: str = "10.1.1.1/24",
        links: list[dict[str, str]] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "nw-name": network, "gw-cidr": gw, "vlan-tag": str(vlan)}
    if links is not None:
        out["contract-links"] = links
    return out


def contract(name: str, *rules: tuple[str, int | None]) -> dict[str, Any]:
    return {"name": name, "filter-info": [
        {"protocol": proto, "servport": "" if port is None else str(port)} for proto, port in rules
    ]}


def gw_config(**overrides: str) -> dict[str, str]:
    base = {
        "key": "aciGw", "name": "aciGw", "pathBindings": "", "nodeBindings": LEAF,
        "physicalDomain": PHYS_DOMAIN, "enforcePolicies": "yes", "includeCommonTenant": "no",
    }
    base.update(overrides)
    return base


def app_profile(tenant: str = "t1", app: str = "app1", epgs: list[dict[str, Any]] | None = None,
                contracts: list[dict[str, Any]] | None = None, gw: dict[str, str] | None = None,
                ) -> dict[str, Any]:
    """A three-tier profile by default: web provides http, app consumes it and provides redis to db."""
    body: dict[str, Any] = {
        "aci-gw-api-version": "v1.2",
        "tenant": tenant,
        "app-prof": app,
        "epgs": epgs if epgs is not None else [
            epg("web", 1001, links=[link("PROVIDE", "webPolicyExpose")]),
            epg("app", 1002, links=[link("CONSUME", "webPolicyExpose"), link("PROVIDE", "dbPolicyFrmapp")]),
            epg("db", 1003, network="net2", gw="10.2.2.1/24", links=[link("CONSUME", "dbPolicyFrmapp")]),
        ],
        "contract-defs": contracts if contracts is not None else [
            contract("webPolicyExpose", ("tcp", 80), ("tcp", 443)),
            contract("dbPolicyFrmapp", ("tcp", 6379), ("icmp", None)),
        ],
    }
    if gw is not None:
        body["gw-config"] = gw
    return body


def big_profile(n_epgs: int, n_contracts: int, tenant: str = "bench", app: str = "bench") -> dict[str, Any]:
    """``n_epgs`` EPGs over a few networks, ``n_contracts`` contracts each provided by one EPG and
    consumed by the next: the benchmark's shape."""
    contracts = [contract(f"c{i}", ("tcp", 8000 + i), ("udp", 9000 + i)) for i in range(n_contracts)]
    epgs = []
    for i in range(n_epgs):
        links = [link("PROVIDE", f"c{j}") for j in range(n_contracts) if j % n_epgs == i]
        links += [link("CONSUME", f"c{j}") for j in range(n_contracts) if (j + 1) % n_epgs == i]
        net = i % 5
        epgs.append(epg(f"epg{i}", 2000 + i, network=f"net{net}", gw=f"10.{net}.0.1/16", links=links))
    return app_profile(tenant, app, epgs, contracts, gw_config())
