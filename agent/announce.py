"""Gratuitous ARPs that announce local endpoints to an ACI fabric.

A leaf learns an endpoint (MAC, IP, EPG by the VLAN it arrived on) from the frames the endpoint sends.
A container that has not spoken yet is unknown to the fabric, so traffic towards it would be flooded
or dropped until it does. In ACI mode the agent therefore sends one gratuitous ARP (a request for the
endpoint's own address) on the endpoint's behalf:

- when the endpoint is first programmed (and for every endpoint after an agent restart);
- when netmaster reports that an app profile holding the endpoint's EPG was pushed to the APIC (the
  ``aciSync`` push state in the watch stream), because the EPG's objects may have just been created;
- periodically at a low rate (``--garp-interval``), so a leaf that aged an idle endpoint out relearns it.

A fabric takes a moment to program what the APIC just received (a leaf drops frames on a VLAN it does
not classify yet), so every announcement is repeated after 1, 2, 4 and 8 seconds (``REPEATS``):
whichever arrives after the leaf caught up is learnt. ``AnnounceSchedule`` keeps those due times.

The frame is injected with an OpenFlow packet-out *as if received on the endpoint's port*, so it walks
the whole pipeline: spoof guard, then flooding within the EPG's segment, tagged with the EPG's VLAN on
the uplink. What decides *which* endpoints to announce is ``announcements``, a pure function of two
applied views.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Iterable, Iterator

from agent.pipeline.view import DatapathView
from agent.state import Endpoint

REPEATS = (1.0, 2.0, 4.0, 8.0)  # seconds after an announcement when it is sent again
_BROADCAST = b"\xff" * 6
_ETH_ARP = 0x0806
_MIN_FRAME = 60  # Ethernet minimum without FCS


def garp_frame(mac: str, ip: str) -> bytes:
    """An ARP request from *mac* for its own *ip*, to broadcast (RFC 5227's announcement)."""
    src = bytes.fromhex(mac.replace(":", ""))
    addr = ipaddress.IPv4Address(ip).packed
    frame = _BROADCAST + src + struct.pack("!H", _ETH_ARP)
    frame += struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + src + addr + b"\0" * 6 + addr
    return frame.ljust(_MIN_FRAME, b"\0")


def _announced(view: DatapathView | None) -> dict[str, tuple[int, int, float]]:
    """Local endpoint id -> (ofport, EPG VLAN, last push of its EPG) in an ACI-mode view."""
    if view is None or not view.aci:
        return {}
    out = {}
    for ep, ofport in view.local_endpoints:
        grp = view.state.group(ep.tenant, ep.group)
        out[ep.id] = (ofport, view.network_of(ep).vlan, grp.aci_synced if grp else 0.0)
    return out


def announcements(old: DatapathView | None, new: DatapathView) -> Iterator[tuple[Endpoint, int]]:
    """The local endpoints of *new* to announce: new ones, moved ones (port or VLAN changed), and those
    whose EPG was pushed to the APIC since *old*."""
    before = _announced(old)
    for ep, ofport in new.local_endpoints if new.aci else ():
        grp = new.state.group(ep.tenant, ep.group)
        now = (ofport, new.network_of(ep).vlan, grp.aci_synced if grp else 0.0)
        was = before.get(ep.id)
        if was is None or was[:2] != now[:2] or now[2] > was[2]:
            yield ep, ofport


class AnnounceSchedule:
    """Endpoint id -> when its announcement is due again (monotonic seconds). Not thread-safe: the
    reconciler calls it under its lock."""

    def __init__(self, repeats: tuple[float, ...] = REPEATS) -> None:
        self.repeats = repeats
        self._due: dict[str, list[float]] = {}

    def sent(self, endpoint_ids: Iterable[str], now: float) -> None:
        """Announcements just went out for *endpoint_ids*: schedule their repeats (replacing older ones)."""
        for ep_id in endpoint_ids:
            self._due[ep_id] = [now + delay for delay in self.repeats]

    def take_due(self, now: float, present: Iterable[str]) -> list[str]:
        """Ids whose next repeat is due; endpoints not *present* any more are forgotten."""
        keep = set(present)
        due = []
        for ep_id in list(self._due):
            times = self._due[ep_id]
            if ep_id not in keep:
                del self._due[ep_id]
                continue
            if times[0] <= now:
                due.append(ep_id)
                while times and times[0] <= now:
                    times.pop(0)
                if not times:
                    del self._due[ep_id]
        return due

    def __len__(self) -> int:
        return len(self._due)
