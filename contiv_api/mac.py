"""The container MAC rule, shared by netmaster (which assigns MACs) and the agent's standalone state
file (which may omit them): one rule, one home, so the two can never disagree.

Why not Contiv's plain ``02:02:<IPv4>``: two tenants (or two networks) may use the same subnet, and
then two containers with the same address got the same MAC. The agent's own pipeline keeps them
apart (its L2 flows match the segment as well as the MAC), but the physical network does not have
to: a VLAN trunk through a switch that learns MACs in one table for all VLANs (Linux's bridge
without VLAN filtering, many access switches; "shared VLAN learning") sends one tenant's frames to
the other's host port, and an ACI fabric or a monitoring tool keyed by MAC sees one endpoint where
there are two. A MAC must identify one endpoint, whatever the addresses.

The rule: the first endpoint holding an address gets Contiv's ``02:02:<IPv4>`` (so the common case,
no overlap, looks exactly as in Contiv, and a MAC still reads as its address); an endpoint whose
address another endpoint already holds gets the next free ``<a>:<b>:<IPv4>`` with another
locally administered unicast prefix (``02:03``, ``02:04``, ... then ``06:00`` ...). The allocator
that knows which MACs are in use is netmaster (an index in its store); the agent never derives a
MAC for an endpoint netmaster gave it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Container, Iterator

#: Two-byte prefixes with the locally administered bit set and the multicast bit clear: 64 first
#: bytes (x2, x6, xa, xe) times 256 second bytes, less 02:00 and 02:01 (the sequence starts at 02:02).
PREFIXES = 64 * 256 - 2


def candidates(ip: str) -> Iterator[str]:
    """The MACs an endpoint with address *ip* may get, in order of preference (Contiv's first)."""
    tail = ":".join(f"{b:02x}" for b in ipaddress.IPv4Address(ip).packed)
    for n in range(PREFIXES):
        first, second = 0x02 + 4 * ((0x02 + n) >> 8), (0x02 + n) & 0xFF
        yield f"{first:02x}:{second:02x}:{tail}"


def first_free(ip: str, taken: Container[str]) -> str:
    """The first MAC for *ip* not in *taken*; ValueError when every prefix is taken for this address."""
    for mac in candidates(ip):
        if mac not in taken:
            return mac
    raise ValueError(f"no free MAC for {ip}: {PREFIXES} endpoints hold this address")
