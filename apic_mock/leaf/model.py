"""The APIC's object tree, reduced to what one leaf enforces.

A real leaf gets its policy from the APIC as resolved, node-local objects (EPG deployments, zoning
rules). The simulated leaf does the same resolution from the tenant subtrees it reads: which VLANs on
which of its ports belong to which EPG (static path and node bindings), each EPG's bridge domain and
VRF, the gateways of each bridge domain, and the contract rules between EPGs (providers, consumers,
subjects, filters, ``vzAny``, preferred groups, unenforced VRFs). The result is plain data, so flow
generation (:mod:`apic_mock.leaf.flows`) is a pure function that can be tested without OVS or an APIC.
"""

from __future__ import annotations

import ipaddress
import logging
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("apic_mock.leaf.model")

#: The query that fetches everything the leaf needs in one request (contracts may live in common).
TREE_CLASSES = (
    "fvTenant,fvCtx,vzAny,vzRsAnyToProv,vzRsAnyToCons,fvBD,fvRsCtx,fvSubnet,fvAp,fvAEPg,fvRsBd,"
    "fvRsPathAtt,fvRsNodeAtt,fvRsProv,fvRsCons,vzBrCP,vzSubj,vzRsSubjFiltAtt,vzInTerm,vzOutTerm,"
    "vzRsFiltAtt,vzFilter,vzEntry"
)

_PATH_RE = re.compile(r"^topology/pod-(\d+)/paths-(\d+)/pathep-\[(.+)\]$")
_NODE_RE = re.compile(r"^topology/pod-(\d+)/node-(\d+)$")
_VLAN_RE = re.compile(r"^vlan-(\d+)$")

PROTOCOLS = {"icmp": 1, "igmp": 2, "tcp": 6, "egp": 8, "igp": 9, "udp": 17, "icmpv6": 58, "eigrp": 88,
             "ospfigp": 89, "pim": 103, "l2tp": 115}
NAMED_PORTS = {"ftpData": 20, "smtp": 25, "dns": 53, "http": 80, "pop3": 110, "https": 443, "rtsp": 554}
ICMP_TYPES = {"echo-rep": 0, "dst-unreach": 3, "src-quench": 4, "echo": 8, "time-exceeded": 11}
#: What the reverse direction of an ICMP entry matches (an echo's reply is an echo-reply).
ICMP_REPLY = {8: 0}


@dataclass(frozen=True)
class Mo:
    """One object of the read tree: class, DN, attributes, children."""

    cls: str
    dn: str
    attrs: dict[str, str]
    children: tuple[Mo, ...] = ()

    def kids(self, cls: str) -> Iterator[Mo]:
        return (c for c in self.children if c.cls == cls)

    def kid(self, cls: str) -> Mo | None:
        return next(self.kids(cls), None)

    def walk(self) -> Iterator[Mo]:
        yield self
        for child in self.children:
            yield from child.walk()


def parse_tree(imdata: Iterable[dict[str, Any]], parent_dn: str = "") -> list[Mo]:
    """APIC JSON (``{cls: {attributes, children}}``, ``dn`` on top objects, ``rn`` below) into :class:`Mo`."""
    out = []
    for item in imdata:
        ((cls, body),) = item.items()
        attrs = {k: str(v) for k, v in body.get("attributes", {}).items()}
        dn = attrs.get("dn") or f"{parent_dn}/{attrs.get('rn', '')}"
        out.append(Mo(cls, dn, attrs, tuple(parse_tree(body.get("children", []), dn))))
    return out


@dataclass(frozen=True, order=True)
class Binding:
    """A (port, VLAN) pair classified into an EPG; ``vlan`` 0 means untagged frames."""

    port: str  # fabric name, e.g. eth1/1
    vlan: int
    epg: str = field(compare=False)


@dataclass(frozen=True)
class Match:
    """An L3/L4 match of a filter entry, already oriented (source -> destination)."""

    ether: str = ""  # "", "ip", "arp", "ipv6"
    proto: int | None = None
    dports: tuple[int, int] | None = None
    sports: tuple[int, int] | None = None
    icmp_type: int | None = None

    def reversed(self) -> Match:
        icmp = self.icmp_type
        if icmp is not None:
            icmp = ICMP_REPLY.get(icmp, icmp)
        return Match(self.ether, self.proto, self.sports, self.dports, icmp)


@dataclass(frozen=True)
class Rule:
    """Traffic from EPG ``src`` to EPG ``dst`` matching ``match`` is permitted (or denied)."""

    src: str
    dst: str
    match: Match
    permit: bool = True
    contract: str = ""


@dataclass
class Epg:
    dn: str
    bd: str
    vrf: str
    isolated: bool = False  # pcEnfPref=enforced: no traffic between its own endpoints
    preferred: bool = False  # prefGrMemb=include


@dataclass
class BridgeDomain:
    dn: str
    vrf: str
    mac: str
    gateways: list[ipaddress.IPv4Interface] = field(default_factory=list)


@dataclass
class Vrf:
    dn: str
    enforced: bool = True
    preferred_group: bool = False  # vzAny prefGrMemb=enabled


@dataclass
class LeafPolicy:
    """Everything the leaf enforces, for one node and its ports."""

    node: int
    epgs: dict[str, Epg] = field(default_factory=dict)
    bds: dict[str, BridgeDomain] = field(default_factory=dict)
    vrfs: dict[str, Vrf] = field(default_factory=dict)
    bindings: list[Binding] = field(default_factory=list)
    rules: list[Rule] = field(default_factory=list)

    def bd_of(self, epg: str) -> BridgeDomain:
        return self.bds[self.epgs[epg].bd]

    def binding(self, port: str, vlan: int) -> Binding | None:
        return next((b for b in self.bindings if b.port == port and b.vlan == vlan), None)


def _encap(value: str, mode: str) -> int | None:
    if mode in ("untagged", "native"):
        return 0
    m = _VLAN_RE.match(value)
    return int(m.group(1)) if m and 1 <= int(m.group(1)) <= 4094 else None


def _port_range(lo: str, hi: str) -> tuple[int, int] | None:
    def num(v: str) -> int | None:
        if v in ("", "unspecified"):
            return None
        return NAMED_PORTS[v] if v in NAMED_PORTS else int(v)

    a, b = num(lo), num(hi)
    if a is None and b is None:
        return None
    lo_port = a if a is not None else b
    hi_port = b if b is not None else a
    assert lo_port is not None
    assert hi_port is not None
    return (min(lo_port, hi_port), max(lo_port, hi_port))


def entry_match(entry: Mo) -> Match | None:
    """A ``vzEntry`` as a :class:`Match`; None for what the leaf cannot express (logged)."""
    a = entry.attrs
    ether = {"unspecified": "", "ip": "ip", "ipv4": "ip", "arp": "arp", "ipv6": "ipv6"}.get(a.get("etherT", ""))
    if ether is None:
        log.warning("filter entry skipped: unsupported etherT", extra={"dn": entry.dn, "etherT": a.get("etherT")})
        return None
    prot = a.get("prot", "unspecified")
    proto = None if prot in ("", "unspecified") else PROTOCOLS.get(prot, int(prot) if prot.isdigit() else -1)
    if proto == -1:
        log.warning("filter entry skipped: unknown protocol", extra={"dn": entry.dn, "prot": prot})
        return None
    if proto is not None and ether == "":
        ether = "ip"
    ports_ok = proto in (6, 17)
    dports = _port_range(a.get("dFromPort", ""), a.get("dToPort", "")) if ports_ok else None
    sports = _port_range(a.get("sFromPort", ""), a.get("sToPort", "")) if ports_ok else None
    icmp = ICMP_TYPES.get(a.get("icmpv4T", "unspecified")) if proto == 1 else None
    return Match(ether, proto, dports, sports, icmp)


class _Resolver:
    """Builds a :class:`LeafPolicy` from the tenant subtrees (one instance per build)."""

    def __init__(self, tenants: list[Mo], node: int, ports: Iterable[str]) -> None:
        self.node = node
        self.ports = sorted(set(ports))
        self.by_dn = {mo.dn: mo for t in tenants for mo in t.walk()}
        self.policy = LeafPolicy(node)

    def run(self) -> LeafPolicy:
        for mo in self.by_dn.values():
            if mo.cls == "fvCtx":
                self._vrf(mo)
        for mo in self.by_dn.values():
            if mo.cls == "fvBD":
                self._bd(mo)
        for mo in self.by_dn.values():
            if mo.cls == "fvAEPg":
                self._epg(mo)
        self._contracts()
        self.policy.bindings.sort()
        return self.policy

    def _target(self, rel: Mo | None) -> str | None:
        if rel is None:
            return None
        tdn = rel.attrs.get("tDn", "")
        return tdn if tdn in self.by_dn else None

    def _vrf(self, mo: Mo) -> None:
        anyobj = mo.kid("vzAny")
        self.policy.vrfs[mo.dn] = Vrf(
            mo.dn,
            enforced=mo.attrs.get("pcEnfPref", "enforced") != "unenforced",
            preferred_group=anyobj is not None and anyobj.attrs.get("prefGrMemb") == "enabled",
        )

    def _bd(self, mo: Mo) -> None:
        vrf = self._target(mo.kid("fvRsCtx"))
        if vrf is None or vrf not in self.policy.vrfs:
            return
        bd = BridgeDomain(mo.dn, vrf, mo.attrs.get("mac", "00:22:BD:F8:19:FF").lower())
        bd.gateways = [g for s in mo.kids("fvSubnet") if (g := _gateway(s)) is not None]
        self.policy.bds[mo.dn] = bd

    def _epg(self, mo: Mo) -> None:
        bd_dn = self._target(mo.kid("fvRsBd"))
        if bd_dn is None or bd_dn not in self.policy.bds:
            return
        bd = self.policy.bds[bd_dn]
        bd.gateways += [g for s in mo.kids("fvSubnet") if (g := _gateway(s)) is not None]
        self.policy.epgs[mo.dn] = Epg(
            mo.dn, bd_dn, bd.vrf,
            isolated=mo.attrs.get("pcEnfPref") == "enforced",
            preferred=mo.attrs.get("prefGrMemb") == "include",
        )
        if mo.attrs.get("shutdown") == "yes":
            return
        for rel in mo.kids("fvRsPathAtt"):
            m = _PATH_RE.match(rel.attrs.get("tDn", ""))
            if m and int(m.group(2)) == self.node:
                self._bind(mo.dn, [m.group(3)], rel)
        for rel in mo.kids("fvRsNodeAtt"):
            m = _NODE_RE.match(rel.attrs.get("tDn", ""))
            if m and int(m.group(2)) == self.node:
                self._bind(mo.dn, self.ports, rel)

    def _bind(self, epg: str, ports: Iterable[str], rel: Mo) -> None:
        vlan = _encap(rel.attrs.get("encap", ""), rel.attrs.get("mode", "regular"))
        if vlan is None:
            log.warning("binding skipped: no usable encap", extra={"dn": rel.dn, "encap": rel.attrs.get("encap")})
            return
        for port in ports:
            taken = self.policy.binding(port, vlan)
            if taken is not None:
                if taken.epg != epg:
                    log.warning("encap already used on this port (APIC would raise a fault)",
                                extra={"port": port, "vlan": vlan, "epg": epg, "owner": taken.epg})
                continue
            self.policy.bindings.append(Binding(port, vlan, epg))

    # -- contracts -------------------------------------------------------------------------------
    def _contracts(self) -> None:
        provs: dict[str, set[str]] = {}
        conss: dict[str, set[str]] = {}
        for epg in self.policy.epgs:
            mo = self.by_dn[epg]
            for cls, into in (("fvRsProv", provs), ("fvRsCons", conss)):
                for rel in mo.kids(cls):
                    if (c := self._target(rel)) is not None:
                        into.setdefault(c, set()).add(epg)
        for vrf in self.policy.vrfs:
            anyobj = self.by_dn[vrf].kid("vzAny")
            if anyobj is None:
                continue
            members = {e for e, spec in self.policy.epgs.items() if spec.vrf == vrf}
            for cls, into in (("vzRsAnyToProv", provs), ("vzRsAnyToCons", conss)):
                for rel in anyobj.kids(cls):
                    if (c := self._target(rel)) is not None:
                        into.setdefault(c, set()).update(members)
        for contract in sorted(set(provs) & set(conss)):
            self._contract_rules(self.by_dn[contract], provs[contract], conss[contract])

    def _filter_matches(self, rels: Iterable[Mo]) -> list[tuple[Match, bool]]:
        out = []
        for rel in rels:
            flt = self._target(rel)
            if flt is None:
                continue
            permit = rel.attrs.get("action", "permit") != "deny"
            out += [(m, permit) for e in self.by_dn[flt].kids("vzEntry") if (m := entry_match(e)) is not None]
        return out

    def _contract_rules(self, contract: Mo, providers: set[str], consumers: set[str]) -> None:
        same_vrf_only = contract.attrs.get("scope", "context") == "context"
        pairs = [(c, p) for c in sorted(consumers) for p in sorted(providers)
                 if c != p and (not same_vrf_only or self.policy.epgs[c].vrf == self.policy.epgs[p].vrf)]
        for subj in contract.kids("vzSubj"):
            both = self._filter_matches(subj.kids("vzRsSubjFiltAtt"))
            reverse = subj.attrs.get("revFltPorts", "yes") == "yes"
            forward = list(both)
            backward = [(m.reversed(), p) for m, p in both] if reverse else []
            if (term := subj.kid("vzInTerm")) is not None:
                forward += self._filter_matches(term.kids("vzRsFiltAtt"))
            if (term := subj.kid("vzOutTerm")) is not None:
                backward += self._filter_matches(term.kids("vzRsFiltAtt"))
            for cons, prov in pairs:
                self.policy.rules += [Rule(cons, prov, m, p, contract.dn) for m, p in forward]
                self.policy.rules += [Rule(prov, cons, m, p, contract.dn) for m, p in backward]


def _gateway(subnet: Mo) -> ipaddress.IPv4Interface | None:
    ctrl = subnet.attrs.get("ctrl", "")
    if "no-default-gateway" in ctrl:
        return None
    try:
        gw = ipaddress.ip_interface(subnet.attrs.get("ip", ""))
    except ValueError:
        return None
    return gw if isinstance(gw, ipaddress.IPv4Interface) else None


def build_policy(tenants: list[Mo], node: int, ports: Iterable[str]) -> LeafPolicy:
    """The policy of leaf ``node`` whose fabric ports are ``ports`` (``eth1/N``), from tenant subtrees."""
    return _Resolver(tenants, node, ports).run()
