"""IPv4 address management for one network, and for the endpoint-group pools inside it.

A network's allocations live in one record (``/contiv/ipam/<tenant>:<network>``) so that an
endpoint create touches exactly one allocator key: the address, the per-EPG pool usage and the
endpoint counters change together in the endpoint's transaction. Addresses are stored as offsets
from the subnet's network address.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

from netmaster.alloc.rangeset import RangeSet
from netmaster.errors import ConflictError, InvalidError


def ip_to_int(text: str) -> int:
    try:
        return int(ipaddress.IPv4Address(text))
    except ValueError as exc:
        raise InvalidError(f"invalid IPv4 address {text!r}") from exc


def int_to_ip(value: int) -> str:
    return str(ipaddress.IPv4Address(value))


@dataclass(frozen=True)
class Subnet:
    """``a.b.c.d/len`` or the range form ``a.b.c.d-e.f.g.h/len`` (hosts limited to that range)."""

    base: int
    length: int
    first: int  # first offset endpoints may use
    last: int  # last offset endpoints may use (first > last: no usable host)

    @classmethod
    def parse(cls, text: str) -> Subnet:
        addr_part, _, len_part = text.partition("/")
        if not len_part.isdigit():
            raise InvalidError(f"invalid subnet {text!r}")
        length = int(len_part)
        if not 8 <= length <= 32:
            raise InvalidError(f"subnet length {length} not supported")
        start_text, sep, end_text = addr_part.partition("-")
        start = ip_to_int(start_text)
        size = 1 << (32 - length)
        base = start & ~(size - 1) & 0xFFFFFFFF
        first, last = 1, size - 2
        if sep:
            end = ip_to_int(end_text)
            if end & ~(size - 1) & 0xFFFFFFFF != base or end < start:
                raise InvalidError(f"invalid subnet range {text!r}")
            first, last = max(first, start - base), min(last, end - base)
        return cls(base, length, first, last)

    @property
    def size(self) -> int:
        return 1 << (32 - self.length)

    @property
    def cidr(self) -> str:
        return f"{int_to_ip(self.base)}/{self.length}"

    def address_range(self) -> tuple[int, int]:
        """The absolute addresses this network claims, for Contiv's overlap check."""
        if self.first == 1 and self.last == self.size - 2:
            return self.base, self.base + self.size - 1
        return self.base + self.first, self.base + self.last

    def overlaps(self, other: Subnet) -> bool:
        a_lo, a_hi = self.address_range()
        b_lo, b_hi = other.address_range()
        return a_lo <= b_hi and b_lo <= a_hi

    def offset(self, ip: str) -> int | None:
        value = ip_to_int(ip)
        off = value - self.base
        return off if 0 <= off < self.size else None

    def address(self, offset: int) -> str:
        return int_to_ip(self.base + offset)

    def host_offset(self, ip: str, what: str) -> int:
        """Offset of a host address, refusing the network and broadcast addresses."""
        off = self.offset(ip)
        if off is None or off == 0 or off == self.size - 1:
            raise InvalidError(f"{what} {ip} is not a host address in subnet {self.cidr}")
        return off


def parse_pool(subnet: Subnet, text: str) -> tuple[int, int]:
    """An EPG ``ipPool`` (``a.b.c.d[-e.f.g.h]``): inside the subnet, host addresses only."""
    start_text, _, end_text = text.partition("-")
    lo = subnet.host_offset(start_text, "ipPool start")
    hi = subnet.host_offset(end_text or start_text, "ipPool end")
    if hi < lo:
        raise InvalidError(f"invalid ipPool {text!r}: end before start")
    return lo, hi


@dataclass
class NetworkIpam:
    """The allocation record of one network (stored as JSON)."""

    subnet: Subnet
    gateway: int | None = None
    used: RangeSet = field(default_factory=RangeSet)
    pools: dict[str, tuple[int, int]] = field(default_factory=dict)
    pool_used: dict[str, RangeSet] = field(default_factory=dict)
    endpoints: int = 0
    group_endpoints: dict[str, int] = field(default_factory=dict)

    @classmethod
    def new(cls, subnet: Subnet, gateway: str) -> NetworkIpam:
        gw = subnet.host_offset(gateway, "gateway") if gateway else None
        return cls(subnet, gw)

    @classmethod
    def load(cls, subnet: Subnet, record: dict[str, Any]) -> NetworkIpam:
        return cls(
            subnet=subnet,
            gateway=record.get("gateway"),
            used=RangeSet.parse(record.get("used", "")),
            pools={k: tuple(v) for k, v in record.get("pools", {}).items()},  # type: ignore[misc]
            pool_used={k: RangeSet.parse(v) for k, v in record.get("poolUsed", {}).items()},
            endpoints=record.get("endpoints", 0),
            group_endpoints=dict(record.get("groupEndpoints", {})),
        )

    def dump(self) -> dict[str, Any]:
        return {
            "gateway": self.gateway,
            "used": self.used.dump(),
            "pools": {k: list(v) for k, v in self.pools.items()},
            "poolUsed": {k: v.dump() for k, v in self.pool_used.items()},
            "endpoints": self.endpoints,
            "groupEndpoints": self.group_endpoints,
        }

    # -- views ---------------------------------------------------------------------------------------

    def allocated(self) -> RangeSet:
        """Everything taken in the network: endpoints, gateway, and whole EPG pools (as Contiv)."""
        out = self.used.copy()
        if self.gateway is not None:
            out.add(self.gateway)
        for lo, hi in self.pools.values():
            out.add_range(lo, hi)
        return out

    def available(self) -> RangeSet:
        return self.allocated().free_within(self.subnet.first, self.subnet.last)

    def pool_available(self, group: str) -> RangeSet:
        lo, hi = self.pools[group]
        return self.pool_used.get(group, RangeSet()).free_within(lo, hi)

    def render(self, offsets: RangeSet) -> str:
        return offsets.render(self.subnet.address)

    # -- pools ---------------------------------------------------------------------------------------

    def add_pool(self, group: str, text: str) -> None:
        lo, hi = parse_pool(self.subnet, text)
        taken = self.allocated()
        for off in range(lo, hi + 1):
            if off in taken:
                raise ConflictError(f"ip address {self.subnet.address(off)} is not available")
        self.pools[group] = (lo, hi)
        self.pool_used[group] = RangeSet()

    def remove_pool(self, group: str) -> None:
        self.pools.pop(group, None)
        self.pool_used.pop(group, None)

    # -- addresses -----------------------------------------------------------------------------------

    def allocate(self, requested: str = "", group: str = "") -> int:
        """Take ``requested`` or the lowest free address, from the group's pool if it has one."""
        in_pool = group in self.pools
        if in_pool:
            lo, hi = self.pools[group]
            taken = self.pool_used.setdefault(group, RangeSet())
            where = f"pool {self.subnet.address(lo)}-{self.subnet.address(hi)}"
        else:
            lo, hi = self.subnet.first, self.subnet.last
            taken = self.allocated()
            where = f"subnet {self.subnet.cidr}"
        if requested:
            off = self.subnet.offset(requested)
            if off is None or not lo <= off <= hi:
                raise ConflictError(f"requested address {requested} is not in {where}")
            if off in taken:
                raise ConflictError(f"requested address {requested} is already in use")
        else:
            found = taken.lowest_free(lo, hi)
            if found is None:
                raise ConflictError(f"auto allocation failed - address exhaustion in {where}")
            off = found
        (self.pool_used[group] if in_pool else self.used).add(off)
        return off

    def release(self, offset: int, group: str = "") -> None:
        if group in self.pools:
            self.pool_used[group].remove(offset)
        else:
            self.used.remove(offset)
