"""The agent's OpenFlow 1.3 controller: programs its bridge over ``agent.ovs.ofchannel``.

Every change is one ONF bundle (OpenFlow 1.3 extension 230) opened, filled, committed atomically and
followed by a barrier, so the switch never shows a half-applied pipeline and the caller learns about
errors synchronously. FlowMods are assembled from cached pieces (agent.ovs.encoder) and cached per
flow: a flow is an immutable value, so its bytes never change except for the cookie (which carries the
round) and the xid, both patched in place. That keeps a 10,000-flow resync inside Python's budget;
os-ken's generic encoder is the slow part, not OVS.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import struct
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from agent.ovs import ofchannel
from agent.ovs.encoder import (
    OFPGC_ADD,
    OFPGC_DELETE,
    OFPGC_MODIFY,
    OFPMC_ADD,
    OFPMC_DELETE,
    OFPMC_MODIFY,
    FlowModEncoder,
    ct_flush,
    group_mod,
    meter_mod,
)
from agent.ovs.flow import COOKIE_ROUND_MASK, COOKIE_ROUND_SHIFT, Flow, Group, Match

LOG = logging.getLogger(__name__)

_ONF_EXPERIMENTER_ID = 0x4F4E4600
_ONF_ET_BUNDLE_CONTROL = 2300
_ONF_ET_BUNDLE_ADD = 2301
_ONF_BCT_OPEN_REQUEST = 0
_ONF_BCT_COMMIT_REQUEST = 4
_ONF_BCT_DISCARD_REQUEST = 6
_ONF_BF_ATOMIC_ORDERED = 3
_OFPFC_ADD = 0
_OFPFC_DELETE = 3
_OFPFC_DELETE_STRICT = 4
_ANY_FLOW = Flow(0, 0, Match())


@dataclass(frozen=True)
class ConntrackFlush:
    """The connections of *zone* and *ip_proto* that went to *vip*:*port* and were answered from
    *provider*:*target*: one provider's connections through one service port."""

    zone: int
    ip_proto: int
    vip: str
    port: int
    provider: str
    target: int


def _meter_mod_xid(command: int, meter_id: int, rate: int, burst: int, xid: int) -> bytes:
    return meter_mod(command, meter_id, rate, burst, xid)


def _group_mod_xid(command: int, group: Group | int, xid: int) -> bytes:
    return group_mod(command, group, xid)


def _ct_flush_xid(f: ConntrackFlush, xid: int) -> bytes:
    return ct_flush(f.zone, f.ip_proto, f.vip, f.port, f.provider, f.target, xid)


class FlowProgrammingError(RuntimeError):
    """The switch rejected a bundle; nothing of it was applied (bundles are atomic)."""


def datapath_id_for(host_label: str, bridge: str) -> int:
    """The datapath id the agent gives its bridge (OVSDB ``other_config:datapath-id``) and accepts on
    its controller socket: stable across restarts of the agent and of OVS, distinct per host and bridge."""
    digest = hashlib.sha256(f"{host_label}/{bridge}".encode()).digest()
    return (int.from_bytes(digest[:8], "big") & 0x0000FFFFFFFFFFFF) or 1


class OpenFlowController:
    """Listens for the bridge's connection (a root-only unix socket) and programs it."""

    def __init__(self, socket_path: Path | str) -> None:
        self.socket_path = Path(socket_path)
        self.channel = ofchannel.OpenFlowChannel(self.socket_path)
        self._xids = itertools.count(0x10000000)
        self._bundle_ids = itertools.count(1)
        self._encoder = FlowModEncoder()
        self._encoded: dict[Flow, bytes] = {}
        self._send_lock = threading.Lock()
        self.on_connect: list[Callable[[Any], None]] = []
        self.channel.on_connect.append(self._connected)
        self.last_apply_seconds = 0.0

    @property
    def target(self) -> str:
        """The controller address to configure on the bridge (OVS connects to ``unix:PATH``)."""
        return f"unix:{self.socket_path}"

    def start(self) -> None:
        """Listen for the bridge (raises OSError if another process listens on the socket)."""
        self.channel.start()

    def expect_datapath(self, datapath_id: int) -> None:
        """Accept only the bridge with this datapath id (none is accepted before this is called)."""
        self.channel.expect_datapath(datapath_id)

    def stop(self) -> None:
        self.channel.stop()

    def _connected(self, conn: Any) -> None:
        """Tell the listeners (read at call time, so hooks added after start() are honoured)."""
        for hook in list(self.on_connect):
            hook(conn)

    def wait_connected(self, timeout: float) -> bool:
        return self.channel.connected.wait(timeout)

    @property
    def connected(self) -> bool:
        return self.channel.connected.is_set()

    # -- encoding ------------------------------------------------------------------------------

    def _add_bytes(self, flow: Flow) -> bytes:
        data = self._encoded.get(flow)
        if data is None:
            data = self._encoded[flow] = self._encoder.flow_mod(flow, _OFPFC_ADD)
        return data

    @staticmethod
    def _with_cookie(data: bytes, cookie: int) -> bytes:
        return data[:8] + struct.pack("!Q", cookie) + data[16:]

    def _delete_round_bytes(self, round_: int) -> bytes:
        cookie = (round_ & 0xFFFF) << COOKIE_ROUND_SHIFT
        return self._encoder.flow_mod(_ANY_FLOW, _OFPFC_DELETE, cookie=cookie, cookie_mask=COOKIE_ROUND_MASK,
                                      table=ofchannel.OFPTT_ALL)

    # -- bundles -------------------------------------------------------------------------------

    def _bundle_ctrl(self, xid: int, bundle_id: int, ctrl_type: int) -> bytes:
        body = struct.pack("!IIIHH", _ONF_EXPERIMENTER_ID, _ONF_ET_BUNDLE_CONTROL, bundle_id, ctrl_type,
                           _ONF_BF_ATOMIC_ORDERED)
        return ofchannel.message(ofchannel.OFPT_EXPERIMENTER, xid, body)

    def _bundle_add(self, xid: int, bundle_id: int, inner: bytes) -> bytes:
        inner = inner[:4] + struct.pack("!I", xid) + inner[8:]
        body = struct.pack("!IIIHH", _ONF_EXPERIMENTER_ID, _ONF_ET_BUNDLE_ADD, bundle_id, 0,
                           _ONF_BF_ATOMIC_ORDERED)
        return ofchannel.message(ofchannel.OFPT_EXPERIMENTER, xid, body + inner)

    def _send_with_barrier(self, conn: ofchannel.Connection, parts: list[bytes], timeout: float) -> int:
        """Send *parts* followed by a barrier and wait for its reply; returns the barrier's xid (the
        switch has processed everything sent before it, errors included, when it answers)."""
        barrier_xid = next(self._xids)
        done = self.channel.expect_barrier(barrier_xid)
        try:
            conn.send(b"".join([*parts, ofchannel.message(ofchannel.OFPT_BARRIER_REQUEST, barrier_xid)]))
            done.result(timeout)
        finally:
            self.channel.forget(barrier_xid)
        return barrier_xid

    def apply(self, adds: Iterable[tuple[Flow, int]], deletes: Sequence[Flow] = (),
              delete_rounds: Sequence[int] = (), timeout: float = 30.0) -> int:
        """Atomically delete *deletes* (strict, by table/priority/match), add or replace *adds*
        ((flow, cookie) pairs), and delete every flow whose cookie carries one of *delete_rounds*.

        Two round trips: open the bundle and add every message, barrier; then commit (or discard,
        if the switch refused any message while it was added), barrier. OVS checks a message when
        it is added to a bundle and would still commit the others, so the commit must wait for that
        verdict to keep the change all-or-nothing.

        Returns the number of messages in the bundle. Raises FlowProgrammingError if the switch
        rejected anything (then nothing changed) and ConnectionError if no switch is connected.
        """
        conn = self.channel.connection()
        started = time.monotonic()
        with self._send_lock:
            bundle_id = next(self._bundle_ids) & 0xFFFFFFFF
            first_xid = next(self._xids)
            parts = [self._bundle_ctrl(first_xid, bundle_id, _ONF_BCT_OPEN_REQUEST)]
            for flow in deletes:
                self._encoded.pop(flow, None)
                parts.append(self._bundle_add(next(self._xids), bundle_id,
                                              self._encoder.flow_mod(flow, _OFPFC_DELETE_STRICT)))
            for flow, cookie in adds:
                parts.append(self._bundle_add(next(self._xids), bundle_id,
                                              self._with_cookie(self._add_bytes(flow), cookie)))
            for round_ in delete_rounds:
                parts.append(self._bundle_add(next(self._xids), bundle_id, self._delete_round_bytes(round_)))
            count = len(parts) - 1
            last = self._send_with_barrier(conn, parts, timeout)
            errors = self.channel.take_errors(range(first_xid, last + 1))
            verdict = _ONF_BCT_DISCARD_REQUEST if errors else _ONF_BCT_COMMIT_REQUEST
            ctrl_xid = next(self._xids)
            last = self._send_with_barrier(conn, [self._bundle_ctrl(ctrl_xid, bundle_id, verdict)], timeout)
            errors += self.channel.take_errors(range(ctrl_xid, last + 1))
        self.last_apply_seconds = time.monotonic() - started
        if errors:
            raise FlowProgrammingError("; ".join(errors))
        return count

    def _send_checked(self, messages: Sequence[Callable[[int], bytes]], timeout: float) -> None:
        """Send one message per builder (each given a fresh xid), then a barrier; raise
        FlowProgrammingError if the switch refused any. Nothing to send needs no switch."""
        if not messages:
            return
        conn = self.channel.connection()
        with self._send_lock:
            first = next(self._xids)
            parts = [build(next(self._xids)) for build in messages]
            last = self._send_with_barrier(conn, parts, timeout)
            errors = self.channel.take_errors(range(first, last + 1))
        if errors:
            raise FlowProgrammingError("; ".join(errors))

    def set_meters(self, adds: Mapping[int, tuple[int, int]], modifies: Mapping[int, tuple[int, int]],
                   deletes: Iterable[int] = (), timeout: float = 30.0) -> None:
        """Delete, then add, then modify (in place: flows using a meter are not touched) meters (id ->
        (rate kbit/s, burst kbits)), and wait for a barrier. ``OFPM_ALL`` in *deletes* deletes every
        meter. Meters cannot go into a bundle (OVS bundles take flow and port mods only), so the
        reconciler sends new and changed meters before the flow bundle that uses them, and deletes
        after the bundle that stopped using them. Raises FlowProgrammingError if the switch refused
        any."""
        messages = [partial(_meter_mod_xid, OFPMC_DELETE, meter_id, 0, 0) for meter_id in deletes]
        for command, meters in ((OFPMC_ADD, adds), (OFPMC_MODIFY, modifies)):
            messages += [partial(_meter_mod_xid, command, meter_id, rate, burst)
                         for meter_id, (rate, burst) in meters.items()]
        self._send_checked(messages, timeout)

    def set_groups(self, adds: Iterable[Group], modifies: Iterable[Group], deletes: Iterable[int] = (),
                   timeout: float = 30.0) -> None:
        """Delete, then add, then modify (in place: the flows that use a group are not touched, nor
        the connections its old buckets made) select groups. Like meters, groups stay out of the
        flow bundle: new and changed ones go before it, unused ones after. ``OFPG_ALL`` in *deletes*
        deletes every group (and OVS deletes the flows using them)."""
        messages = [partial(_group_mod_xid, OFPGC_DELETE, group_id) for group_id in deletes]
        messages += [partial(_group_mod_xid, OFPGC_ADD, g) for g in adds]
        messages += [partial(_group_mod_xid, OFPGC_MODIFY, g) for g in modifies]
        self._send_checked(messages, timeout)

    def flush_conntrack(self, flushes: Iterable[ConntrackFlush], timeout: float = 30.0) -> None:
        """Delete conntrack entries (NXT_CT_FLUSH, OVS 3.1's ``ovs-ofctl ct-flush``), one message each."""
        self._send_checked([partial(_ct_flush_xid, f) for f in flushes], timeout)

    def flow_stats(self, timeout: float = 10.0) -> list[ofchannel.FlowStat]:
        """All flows on the switch (table_id, priority, cookie and counters of each)."""
        conn = self.channel.connection()
        xid = next(self._xids)
        fut = self.channel.expect_stats(xid)
        try:
            conn.send(ofchannel.flow_stats_request(xid))
            return fut.result(timeout)
        finally:
            self.channel.forget(xid)

    def inject(self, in_port: int, frame: bytes) -> None:
        """Run *frame* through the pipeline as if it had been received on *in_port* (packet-out to
        OFPP_TABLE). Raises ConnectionError if no switch is connected."""
        self.channel.connection().send(ofchannel.packet_out_to_table(next(self._xids), in_port, frame))
