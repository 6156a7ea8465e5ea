"""The names a tenant's containers can resolve, built from the agent's desired state (pure; tested
without a datapath).

Within the asker's tenant, each name resolves in three spellings, ``NAME``, ``NAME.TENANT`` and
``NAME.TENANT.ZONE`` (``ZONE`` is ``contiv`` unless the agent is told otherwise), case-insensitively:

- a service (serviceLB) name -> its VIP; ``_PORT._tcp.SERVICE...`` (or ``_udp``) -> SRV for that port;
- a container name (the endpoint's ``containerName``) -> its address;
- an endpoint group name -> the addresses of its members;
- ``in-addr.arpa`` of a tenant's endpoint or VIP -> PTR to its name under ``TENANT.ZONE``.

The first match in that order answers. Names under ``ZONE`` that match nothing (another tenant's
included) are NXDOMAIN; every other name goes to the host's resolvers. The TTL is short (5 s) so a
deleted endpoint stops resolving quickly in caches too.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from agent.state import DesiredState

TTL = 5


@dataclass(frozen=True)
class Answer:
    """What the responder sends: A addresses, SRV (port, target), PTR targets; ``nxdomain`` for a name
    of the zone nobody holds; ``forward`` for a name outside it."""

    addresses: tuple[str, ...] = ()
    srv: tuple[tuple[int, str], ...] = ()
    ptr: tuple[str, ...] = ()
    nxdomain: bool = False
    forward: bool = False


@dataclass(frozen=True)
class TenantNames:
    names: dict[str, tuple[str, ...]] = field(default_factory=dict)  # name -> addresses
    srv: dict[str, tuple[tuple[int, str], ...]] = field(default_factory=dict)  # "_80._tcp.web" -> SRV
    ptr: dict[str, str] = field(default_factory=dict)  # address -> name


@dataclass(frozen=True)
class Records:
    """Every tenant's names; replaced as a whole on each state change (readers never see half)."""

    zone: str
    tenants: dict[str, TenantNames] = field(default_factory=dict)

    @classmethod
    def of(cls, state: DesiredState, zone: str = "contiv") -> Records:
        out: dict[str, TenantNames] = {}
        for tenant in sorted({n.tenant for n in state.networks}):
            names: dict[str, tuple[str, ...]] = {}
            srv: dict[str, tuple[tuple[int, str], ...]] = {}
            ptr: dict[str, str] = {}
            for svc in state.services:
                if svc.tenant == tenant:
                    names.setdefault(svc.name.lower(), (svc.vip,))
                    ptr.setdefault(svc.vip, svc.name.lower())
                    for port in svc.ports:
                        key = f"_{port.port}._{port.protocol}.{svc.name.lower()}"
                        srv[key] = ((port.port, f"{svc.name.lower()}.{tenant}.{zone}"),)
            members: dict[str, list[str]] = {}
            for ep in state.endpoints:
                if ep.tenant != tenant:
                    continue
                if ep.name:
                    names.setdefault(ep.name.lower(), (ep.ip,))
                    ptr.setdefault(ep.ip, ep.name.lower())
                if ep.group:
                    members.setdefault(ep.group.lower(), []).append(ep.ip)
            for group, ips in sorted(members.items()):
                names.setdefault(group, tuple(sorted(ips, key=ipaddress.IPv4Address)))
            out[tenant] = TenantNames(names, srv, ptr)
        return cls(zone, out)

    def answer(self, tenant: str, qname: str, qtype: str) -> Answer:
        """The answer to *qname* (*qtype* A, SRV, PTR, ANY or another) asked from *tenant*."""
        name = qname.lower().rstrip(".")
        names = self.tenants.get(tenant, TenantNames())
        if name.endswith(".in-addr.arpa"):
            address = _reverse(name)
            if address in names.ptr:
                return Answer(ptr=(f"{names.ptr[address]}.{tenant}.{self.zone}",))
            return Answer(forward=True)
        in_zone = name == self.zone or name.endswith(f".{self.zone}")
        short = _strip(name, f".{tenant}.{self.zone}") or _strip(name, f".{tenant}") or name
        if name in names.srv or short in names.srv:
            return Answer(srv=names.srv.get(name) or names.srv[short]) if qtype in ("SRV", "ANY") else Answer()
        found = names.names.get(short) if (short != name or "." not in name) else None
        if found is not None:
            return Answer(addresses=found) if qtype in ("A", "ANY") else Answer()
        return Answer(nxdomain=True) if in_zone else Answer(forward=True)


def _strip(name: str, suffix: str) -> str:
    return name[: -len(suffix)] if name.endswith(suffix) and len(name) > len(suffix) else ""


def _reverse(name: str) -> str:
    parts = name[: -len(".in-addr.arpa")].split(".")
    return ".".join(reversed(parts)) if len(parts) == 4 else ""
