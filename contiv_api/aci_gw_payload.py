"""Validation of Contiv aci-gw API payloads (version v1.2) into typed requests.

Netmaster builds these payloads (reference contiv.md §6.2). Everything is checked before the APIC is
contacted, so a bad payload never causes a write: key sets per level (mandatory, optional, unknown
rejected), the API version, names against APIC's naming rule, VLAN tags, CIDRs, contract links.
Every failure is a :class:`PayloadError` whose message says where and why.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Any

API_VERSION = "v1.2"

#: APIC naming rule for ``name`` properties (apic.md §3.6); Contiv names are a subset of it.
_APIC_NAME = re.compile(r"^[a-zA-Z0-9_.:-]{1,64}$")
#: Contract names may exceed 64 characters (``<policy>Frm<epg>``); the translator shortens them.
_CONTRACT_NAME = re.compile(r"^[a-zA-Z0-9_.:-]{1,200}$")
_MAC = re.compile(r"^[0-9A-Fa-f]{2}([:-][0-9A-Fa-f]{2}){5}$")
_NAMED_PROTOCOLS = ("tcp", "udp", "icmp")

LINK_KINDS = ("PROVIDE", "CONSUME")
CONTRACT_KINDS = ("INTERNAL", "EXTERNAL")


class PayloadError(ValueError):
    """An invalid request; ``str(err)`` is the reason returned to the caller."""


@dataclass(frozen=True)
class FilterSpec:
    """One allow rule's match: protocol ("" = any IP, a name, or an IP protocol number) and port."""

    protocol: str
    port: int | None


@dataclass(frozen=True)
class ContractDef:
    name: str
    filters: tuple[FilterSpec, ...]


@dataclass(frozen=True)
class ContractLink:
    link_kind: str  # PROVIDE | CONSUME
    contract_kind: str  # INTERNAL | EXTERNAL
    name: str
    dn: str


@dataclass(frozen=True)
class EpgSpec:
    name: str
    network: str
    gw_cidr: str  # "" for an L2-only network
    vlan: int
    links: tuple[ContractLink, ...]


@dataclass(frozen=True)
class GwConfigOverride:
    """Fabric settings carried by the request; ``None`` fields fall back to the environment."""

    node_bindings: tuple[str, ...] | None = None
    path_bindings: tuple[str, ...] | None = None
    physical_domain: str | None = None
    vmm_domain: str | None = None
    enforce_policies: bool | None = None
    include_common_tenant: bool | None = None
    vrf: str | None = None


@dataclass(frozen=True)
class AppProfileRequest:
    tenant: str
    app: str
    epgs: tuple[EpgSpec, ...]
    contracts: tuple[ContractDef, ...]
    gw_config: GwConfigOverride | None


@dataclass(frozen=True)
class EndpointQuery:
    tenant: str
    app: str
    epg: str
    mac: str


def _check_keys(obj: Any, where: str, mandatory: set[str], optional: set[str]) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise PayloadError(f"{where}: must be a JSON object, got {type(obj).__name__}")
    missing = sorted(mandatory - obj.keys())
    if missing:
        raise PayloadError(f"{where}: missing mandatory fields: {', '.join(missing)}")
    unknown = sorted(obj.keys() - mandatory - optional)
    if unknown:
        raise PayloadError(f"{where}: unknown fields: {', '.join(unknown)}")
    return obj


def _name(value: Any, where: str, pattern: re.Pattern[str] = _APIC_NAME) -> str:
    if not isinstance(value, str) or not pattern.match(value):
        raise PayloadError(
            f"{where}: invalid name {value!r} (letters, digits, '_', '.', ':', '-'; 1 to 64 characters)"
        )
    return value


def _string(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise PayloadError(f"{where}: must be a string, got {type(value).__name__}")
    return value


def _yes_no(value: Any, where: str) -> bool | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("yes", "no"):
        return value.lower() == "yes"
    raise PayloadError(f"{where}: must be 'yes' or 'no', got {value!r}")


def _vlan(value: Any, where: str) -> int:
    text = str(value).strip() if isinstance(value, (str, int)) and not isinstance(value, bool) else ""
    if not text.isdigit() or not 1 <= int(text) <= 4094:
        raise PayloadError(f"{where}: invalid VLAN tag {value!r} (1 to 4094)")
    return int(text)


def _gw_cidr(value: Any, where: str) -> str:
    text = _string(value, where).strip()
    if text in ("", "/") or text.startswith("/"):
        return ""  # netmaster sends "/<len>" or "" for a network without gateway: an L2-only BD
    if "/" not in text:
        raise PayloadError(f"{where}: invalid gateway CIDR {text!r} (expected address/length)")
    try:
        ipaddress.ip_interface(text)
    except ValueError:
        raise PayloadError(f"{where}: invalid gateway CIDR {text!r}") from None
    return text


def _port(value: Any, where: str) -> int | None:
    if value is None or value == "":
        return None
    text = str(value).strip() if isinstance(value, (str, int)) and not isinstance(value, bool) else "x"
    if not text.isdigit() or int(text) > 65535:
        raise PayloadError(f"{where}: invalid port {value!r} (0 to 65535)")
    return int(text) or None


def _protocol(value: Any, where: str) -> str:
    if value is None:
        return ""
    text = _string(value, where).strip().lower()
    if text in ("", *_NAMED_PROTOCOLS):
        return text
    if text.isdigit() and int(text) <= 255:
        return {"1": "icmp", "6": "tcp", "17": "udp"}.get(str(int(text)), str(int(text)))
    raise PayloadError(f"{where}: invalid protocol {value!r} (tcp, udp, icmp or 0 to 255)")


def _bindings(value: Any, where: str) -> tuple[str, ...] | None:
    if value is None:
        return None
    text = _string(value, where)
    items = tuple(part.strip() for part in text.split(",") if part.strip())
    return items or None


def _parse_gw_config(obj: Any) -> GwConfigOverride:
    where = "gw-config"
    # The aciGw model object as netmaster stores it also carries its key, name and link maps.
    gc = _check_keys(
        obj,
        where,
        set(),
        {
            "pathBindings", "nodeBindings", "physicalDomain", "vmmDomain", "enforcePolicies",
            "includeCommonTenant", "vrf", "key", "name", "links", "link-sets",
        },
    )

    def opt_str(key: str) -> str | None:
        value = gc.get(key)
        return _string(value, f"{where}.{key}").strip() or None if value is not None else None

    return GwConfigOverride(
        node_bindings=_bindings(gc.get("nodeBindings"), f"{where}.nodeBindings"),
        path_bindings=_bindings(gc.get("pathBindings"), f"{where}.pathBindings"),
        physical_domain=opt_str("physicalDomain"),
        vmm_domain=opt_str("vmmDomain"),
        enforce_policies=_yes_no(gc.get("enforcePolicies"), f"{where}.enforcePolicies"),
        include_common_tenant=_yes_no(gc.get("includeCommonTenant"), f"{where}.includeCommonTenant"),
        vrf=opt_str("vrf"),
    )


def _parse_link(obj: Any, where: str) -> ContractLink:
    link = _check_keys(obj, where, {"link-kind", "contract-kind"}, {"contract-name", "contract-dn"})
    link_kind = _string(link["link-kind"], f"{where}.link-kind").upper()
    if link_kind not in LINK_KINDS:
        raise PayloadError(f"{where}.link-kind: must be PROVIDE or CONSUME, got {link['link-kind']!r}")
    contract_kind = _string(link["contract-kind"], f"{where}.contract-kind").upper()
    if contract_kind not in CONTRACT_KINDS:
        raise PayloadError(
            f"{where}.contract-kind: must be INTERNAL or EXTERNAL, got {link['contract-kind']!r}"
        )
    name = _string(link.get("contract-name", ""), f"{where}.contract-name").strip()
    dn = _string(link.get("contract-dn", ""), f"{where}.contract-dn").strip()
    if contract_kind == "INTERNAL":
        _name(name, f"{where}.contract-name", _CONTRACT_NAME)
    elif not dn:
        raise PayloadError(f"{where}: an EXTERNAL link needs contract-dn")
    return ContractLink(link_kind, contract_kind, name, dn)


def _parse_epg(obj: Any, where: str) -> EpgSpec:
    epg = _check_keys(obj, where, {"name", "nw-name", "gw-cidr", "vlan-tag"}, {"contract-links"})
    name = _name(epg["name"], f"{where}.name")
    where = f"epg {name}"
    links_raw = epg.get("contract-links") or []
    if not isinstance(links_raw, list):
        raise PayloadError(f"{where}.contract-links: must be a list")
    links = tuple(_parse_link(link, f"{where}.contract-links[{i}]") for i, link in enumerate(links_raw))
    return EpgSpec(
        name=name,
        network=_name(epg["nw-name"], f"{where}.nw-name"),
        gw_cidr=_gw_cidr(epg["gw-cidr"], f"{where}.gw-cidr"),
        vlan=_vlan(epg["vlan-tag"], f"{where}.vlan-tag"),
        links=links,
    )


def _parse_contract(obj: Any, where: str) -> ContractDef:
    cdef = _check_keys(obj, where, {"name"}, {"filter-info"})
    name = _name(cdef["name"], f"{where}.name", _CONTRACT_NAME)
    where = f"contract {name}"
    raw = cdef.get("filter-info") or []
    if not isinstance(raw, list):
        raise PayloadError(f"{where}.filter-info: must be a list")
    filters: list[FilterSpec] = []
    for i, item in enumerate(raw):
        fwhere = f"{where}.filter-info[{i}]"
        entry = _check_keys(item, fwhere, set(), {"protocol", "servport"})
        protocol = _protocol(entry.get("protocol"), f"{fwhere}.protocol")
        port = _port(entry.get("servport"), f"{fwhere}.servport")
        spec = FilterSpec(protocol, port if protocol in ("tcp", "udp") else None)
        if spec not in filters:
            filters.append(spec)
    return ContractDef(name, tuple(filters))


def _require_version(data: dict[str, Any]) -> None:
    version = data.get("aci-gw-api-version")
    if version != API_VERSION:
        raise PayloadError(
            f"unsupported aci-gw-api-version {version!r}: this gateway speaks {API_VERSION}"
        )


def parse_app_profile(data: Any) -> AppProfileRequest:
    """Validate a /createAppProf or /validateAppProf body."""
    top = _check_keys(
        data,
        "top level",
        {"aci-gw-api-version", "tenant", "app-prof", "epgs"},
        {"contract-defs", "gw-config"},
    )
    _require_version(top)
    tenant = _name(top["tenant"], "tenant")
    app = _name(top["app-prof"], "app-prof")
    if not isinstance(top["epgs"], list) or not top["epgs"]:
        raise PayloadError("epgs: empty or not a list (an app profile needs at least one EPG)")
    epgs = tuple(_parse_epg(e, f"epgs[{i}]") for i, e in enumerate(top["epgs"]))
    _check_unique(epgs)
    raw_contracts = top.get("contract-defs") or []
    if not isinstance(raw_contracts, list):
        raise PayloadError("contract-defs: must be a list")
    contracts = tuple(_parse_contract(c, f"contract-defs[{i}]") for i, c in enumerate(raw_contracts))
    names = [c.name for c in contracts]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise PayloadError(f"contract-defs: duplicate contract names: {', '.join(dupes)}")
    gw = _parse_gw_config(top["gw-config"]) if top.get("gw-config") is not None else None
    return AppProfileRequest(tenant, app, epgs, contracts, gw)


def _check_unique(epgs: tuple[EpgSpec, ...]) -> None:
    seen: dict[str, EpgSpec] = {}
    vlans: dict[int, str] = {}
    gateways: dict[str, str] = {}
    for epg in epgs:
        if epg.name in seen:
            raise PayloadError(f"epgs: EPG {epg.name} is listed twice")
        seen[epg.name] = epg
        if epg.vlan in vlans:
            raise PayloadError(f"epgs: VLAN tag {epg.vlan} is used by EPGs {vlans[epg.vlan]} and {epg.name}")
        vlans[epg.vlan] = epg.name
        previous = gateways.setdefault(epg.network, epg.gw_cidr)
        if previous != epg.gw_cidr:
            raise PayloadError(
                f"epgs: network {epg.network} has two gateways ({previous!r} and {epg.gw_cidr!r})"
            )


def parse_delete(data: Any) -> tuple[str, str]:
    """Validate a /deleteAppProf body: tenant and app-prof (the rest of a create payload is allowed)."""
    top = _check_keys(
        data,
        "top level",
        {"tenant", "app-prof"},
        {"aci-gw-api-version", "epgs", "contract-defs", "gw-config"},
    )
    if "aci-gw-api-version" in top:
        _require_version(top)
    return _name(top["tenant"], "tenant"), _name(top["app-prof"], "app-prof")


def parse_endpoint_query(data: Any) -> EndpointQuery:
    """Validate a /getEndpoint body."""
    top = _check_keys(data, "top level", {"tenant", "app-prof", "epg", "epmac"}, {"aci-gw-api-version"})
    mac = _string(top["epmac"], "epmac")
    if not _MAC.match(mac):
        raise PayloadError(f"epmac: invalid MAC address {mac!r}")
    return EndpointQuery(
        tenant=_name(top["tenant"], "tenant"),
        app=_name(top["app-prof"], "app-prof"),
        epg=_name(top["epg"], "epg"),
        mac=mac.replace("-", ":").upper(),
    )
