"""Endpoint learning: which MAC (and IP) sits behind which port and VLAN, and its ageing.

The data plane copies ARP frames, and frames from sources it does not know yet, to the learning port
with the ingress binding number in the destination MAC (see :mod:`apic_mock.leaf.flows`). A thread
reads them from a raw socket opened inside the leaf namespace (``setns`` on that thread only, so the
rest of the process stays in the root namespace where the APIC is). The table keeps the last time
each endpoint was seen; the controller refreshes it from flow counters and ages endpoints out after
``age`` seconds of silence, as a leaf's endpoint retention policy does.
"""

from __future__ import annotations

import ctypes
import ipaddress
import logging
import os
import select
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger("apic_mock.leaf.learning")

ETH_P_ALL = 0x0003
CLONE_NEWNET = 0x40000000
PACKET_OUTGOING = 4


@dataclass(frozen=True)
class Sighting:
    """One frame seen on the learning port."""

    binding: int
    mac: str  # lower case
    ip: str | None
    from_arp: bool


@dataclass
class EndpointRecord:
    mac: str
    port: str
    vlan: int
    epg: str
    ip: str | None
    last_seen: float


def parse_frame(frame: bytes) -> Sighting | None:
    """Binding number (low 16 bits of the destination MAC), source MAC and sender IP of a copy."""
    if len(frame) < 14:
        return None
    binding = struct.unpack("!H", frame[4:6])[0]
    src = frame[6:12]
    if src[0] & 1 or binding == 0:
        return None
    mac = ":".join(f"{b:02x}" for b in src)
    ethertype = struct.unpack("!H", frame[12:14])[0]
    offset = 14
    if ethertype == 0x8100 and len(frame) >= 18:
        ethertype = struct.unpack("!H", frame[16:18])[0]
        offset = 18
    addr: bytes | None = None
    if ethertype == 0x0806 and len(frame) >= offset + 18:
        addr = frame[offset + 14:offset + 18]
    elif ethertype == 0x0800 and len(frame) >= offset + 20:
        addr = frame[offset + 12:offset + 16]
    ip = str(ipaddress.IPv4Address(addr)) if addr else None
    if ip in ("0.0.0.0",) or (ip and ipaddress.IPv4Address(ip).is_multicast):
        ip = None
    return Sighting(binding, mac, ip, ethertype == 0x0806)


def open_raw_socket(netns: str, iface: str) -> socket.socket:
    """An AF_PACKET socket on ``iface`` inside network namespace ``netns``.

    Network namespaces are per thread: a helper thread enters the namespace, opens the socket and
    ends, so the calling thread never changes namespace."""
    result: dict[str, object] = {}

    def enter() -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        try:
            fd = os.open(f"/run/netns/{netns}", os.O_RDONLY)
            try:
                if libc.setns(fd, CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), f"setns {netns}: {os.strerror(ctypes.get_errno())}")
            finally:
                os.close(fd)
            sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
            sock.bind((iface, 0))
            result["sock"] = sock
        except OSError as exc:
            result["error"] = exc

    thread = threading.Thread(target=enter, name=f"setns-{netns}")
    thread.start()
    thread.join()
    if "error" in result:
        raise result["error"]  # type: ignore[misc]
    return result["sock"]  # type: ignore[return-value]


class Learner:
    """Reads the learning port in a thread and hands each sighting to ``on_sighting``."""

    def __init__(self, netns: str, iface: str, on_sighting: Callable[[Sighting], None]) -> None:
        self.sock = open_raw_socket(netns, iface)
        self.on_sighting = on_sighting
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="leaf-learner", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([self.sock], [], [], 0.2)
            if not ready:
                continue
            try:
                frame, addr = self.sock.recvfrom(65535)
            except OSError:
                continue
            if addr[2] == PACKET_OUTGOING:
                continue
            sighting = parse_frame(frame)
            if sighting is not None:
                try:
                    self.on_sighting(sighting)
                except Exception:
                    log.exception("sighting not handled")


class EndpointTable:
    """Learnt endpoints keyed by (bridge domain, MAC), with their last sighting; thread-safe."""

    def __init__(self, age: float) -> None:
        self.age = age
        self.lock = threading.Lock()
        self.records: dict[tuple[str, str], EndpointRecord] = {}

    def learn(self, bd: str, record: EndpointRecord) -> bool:
        """Record a sighting; True when something forwarding depends on changed (new, moved, new IP)."""
        with self.lock:
            key = (bd, record.mac)
            old = self.records.get(key)
            if old is not None and record.ip is None:
                record.ip = old.ip
            self.records[key] = record
            return old is None or (old.port, old.vlan, old.epg, old.ip) != (record.port, record.vlan,
                                                                          record.epg, record.ip)

    def release_ip(self, ip: str, keep: tuple[str, str], same_vrf: Callable[[str], bool]) -> list[EndpointRecord]:
        """An IP moved to endpoint ``keep`` (bd, mac): forget it on the others of the same VRF."""
        with self.lock:
            out = []
            for key, rec in self.records.items():
                if key != keep and rec.ip == ip and same_vrf(key[0]):
                    rec.ip = None
                    out.append(rec)
            return out

    def touch(self, bd: str, mac: str, now: float) -> None:
        with self.lock:
            if (rec := self.records.get((bd, mac))) is not None:
                rec.last_seen = now

    def expire(self, now: float | None = None) -> list[EndpointRecord]:
        """Remove and return endpoints silent for longer than the age."""
        now = time.monotonic() if now is None else now
        with self.lock:
            old = [k for k, r in self.records.items() if now - r.last_seen > self.age]
            return [self.records.pop(k) for k in old]

    def retain(self, keep: Callable[[str, EndpointRecord], bool]) -> list[EndpointRecord]:
        """Drop endpoints whose binding or EPG no longer exists; return them."""
        with self.lock:
            gone = [k for k, r in self.records.items() if not keep(k[0], r)]
            return [self.records.pop(k) for k in gone]

    def snapshot(self) -> list[tuple[str, EndpointRecord]]:
        with self.lock:
            return [(k[0], EndpointRecord(**vars(r))) for k, r in sorted(self.records.items())]
