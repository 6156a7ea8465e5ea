"""The agent's OpenFlow 1.3 connection to its bridge, without a controller framework.

The bridge connects to the agent (its controller target, ``unix:/var/run/openvswitch/contiv-<bridge>.sock``).
This module accepts that connection, says HELLO and asks for the switch's features, answers the
switch's echo requests and sends its own when the line is quiet (a switch that stops answering is
dropped after three), and hands the agent what it waits for: barrier replies, errors and flow statistics, each by xid.

Why not os-ken's runtime, which did this before: the agent only ever sends pre-encoded bytes and
waits for a barrier, and os-ken put four thread hand-offs into each such round trip (its send queue
and send thread, its receive thread and message parser, its event queue and application thread).
On the CNI ADD path, which waits for two round trips, that was milliseconds under load. Here the
caller's thread writes the bytes itself (under a lock) and the one reader thread of the connection
resolves the caller's future directly. os-ken remains the encoder's reference for message layouts.

Who may be the switch: whoever completes the handshake owns the agent's view of the bridge (where
its flows go, what its flow statistics say), so the listener is a unix socket only root can open
(mode 0600, made under another name and renamed into place, so there is no moment when it is open
to all), the peer's credentials must be root's (SO_PEERCRED), and the features reply must carry
the datapath id the agent gave its bridge. A connection failing any of these is closed without
touching the current one. A TCP listener on 127.0.0.1 (what this was before) let any local user
replace the bridge's connection.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import socket
import stat
import struct
import threading
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import NamedTuple

LOG = logging.getLogger(__name__)

OFP_VERSION = 4  # OpenFlow 1.3
OFPT_HELLO, OFPT_ERROR, OFPT_ECHO_REQUEST, OFPT_ECHO_REPLY, OFPT_EXPERIMENTER = 0, 1, 2, 3, 4
OFPT_FEATURES_REQUEST, OFPT_FEATURES_REPLY = 5, 6
OFPT_PACKET_OUT = 13
OFPT_MULTIPART_REQUEST, OFPT_MULTIPART_REPLY = 18, 19
OFPT_BARRIER_REQUEST, OFPT_BARRIER_REPLY = 20, 21
OFPMP_FLOW = 1
OFPMPF_REPLY_MORE = 1
OFPP_TABLE = 0xFFFFFFF9
OFPP_ANY = 0xFFFFFFFF
OFPG_ANY = 0xFFFFFFFF
OFPTT_ALL = 0xFF
OFP_NO_BUFFER = 0xFFFFFFFF
OFPCML_MAX = 0xFFE5  # max_len of an output action (meaningful only towards a controller)

HEADER = struct.Struct("!BBHI")  # version, type, length, xid
_HELLO_BITMAP = struct.pack("!HHI", 1, 8, 1 << OFP_VERSION)  # OFPHET_VERSIONBITMAP: 1.3 only
_MULTIPART = struct.Struct("!HH4x")  # type, flags
_FLOW_STATS_REQUEST = struct.Struct("!B3xII4xQQ")  # table_id, out_port, out_group, cookie, cookie_mask
_EMPTY_MATCH = struct.pack("!HH4x", 1, 4)  # OFPMT_OXM with no fields, padded to 8
_FLOW_STATS = struct.Struct("!HBxIIHHHH4xQQQ")  # ofp_flow_stats up to (not including) its match
_PACKET_OUT = struct.Struct("!IIH6x")  # buffer_id, in_port, actions_len
_OUTPUT_TO_TABLE = struct.pack("!HHIH6x", 0, 16, OFPP_TABLE, OFPCML_MAX)  # OFPAT_OUTPUT
_ERROR = struct.Struct("!HH")
_PEERCRED = struct.Struct("3i")  # pid, uid, gid

ECHO_INTERVAL = 1.0  # seconds of silence before an echo request
ECHO_MISSES = 3  # unanswered echo requests before the connection is dropped


class FlowStat(NamedTuple):
    """One entry of a flow statistics reply: what the agent reads from the switch's flows."""

    table_id: int
    priority: int
    cookie: int
    packet_count: int
    byte_count: int


def message(msg_type: int, xid: int, body: bytes = b"") -> bytes:
    return HEADER.pack(OFP_VERSION, msg_type, HEADER.size + len(body), xid) + body


def flow_stats_request(xid: int) -> bytes:
    """Every flow of every table."""
    body = _MULTIPART.pack(OFPMP_FLOW, 0) + _FLOW_STATS_REQUEST.pack(OFPTT_ALL, OFPP_ANY, OFPG_ANY, 0, 0)
    return message(OFPT_MULTIPART_REQUEST, xid, body + _EMPTY_MATCH)


def packet_out_to_table(xid: int, in_port: int, frame: bytes) -> bytes:
    """Run *frame* through the pipeline as if received on *in_port* (output to OFPP_TABLE)."""
    body = _PACKET_OUT.pack(OFP_NO_BUFFER, in_port, len(_OUTPUT_TO_TABLE)) + _OUTPUT_TO_TABLE + frame
    return message(OFPT_PACKET_OUT, xid, body)


def parse_flow_stats(body: bytes) -> list[FlowStat]:
    """The entries of one OFPMP_FLOW reply body (after the multipart header)."""
    out, offset = [], 0
    while offset + _FLOW_STATS.size <= len(body):
        length, table_id, _sec, _nsec, priority, _idle, _hard, _flags, cookie, packets, octets = \
            _FLOW_STATS.unpack_from(body, offset)
        if length < _FLOW_STATS.size:
            raise ValueError(f"flow stats entry of length {length}")
        out.append(FlowStat(table_id, priority, cookie, packets, octets))
        offset += length
    return out


def _fail(futures: list[Future]) -> None:
    for fut in futures:
        if not fut.done():
            fut.set_exception(ConnectionError("switch disconnected"))


class Connection:
    """One accepted switch connection: the socket, its send lock and what its reader learnt."""

    def __init__(self, sock: socket.socket, peer: str) -> None:
        self.sock = sock
        self.peer = peer
        self.datapath_id = 0
        self.send_lock = threading.Lock()
        self.closed = False

    def send(self, data: bytes) -> None:
        with self.send_lock:
            if self.closed:
                raise ConnectionError("switch disconnected")
            self.sock.sendall(data)

    def close(self) -> None:
        self.closed = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


def peer_uid(sock: socket.socket) -> int:
    """The user id of the process at the other end of a unix socket (as the kernel saw it connect)."""
    _pid, uid, _gid = _PEERCRED.unpack(sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _PEERCRED.size))
    return uid


def bind_private(path: Path) -> socket.socket:
    """A listening unix socket at *path* that only this user (root) can connect to.

    Raises OSError if another live process listens there. A stale socket file (a crashed agent's)
    is replaced. The socket is bound under a temporary name, restricted, then renamed into place,
    so it is never reachable with looser permissions."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() or path.is_symlink():
        if not stat.S_ISSOCK(path.lstat().st_mode):
            raise OSError(f"{path} exists and is not a socket")
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            try:
                probe.connect(str(path))
            except OSError:
                pass  # stale: nobody listens
            else:
                raise OSError(f"another process listens on {path}")
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        listener.bind(str(tmp))
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
        listener.listen(4)
    except OSError:
        listener.close()
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    return listener


class OpenFlowChannel:
    """Listens for the bridge on a root-only unix socket and keeps one connection to it (a
    reconnecting bridge replaces the old connection). Only a peer running as root whose features
    reply carries the expected datapath id (:meth:`expect_datapath`; none is accepted before) is
    taken. ``on_connect`` hooks run, in their own thread, once the switch has answered the
    features request."""

    def __init__(self, socket_path: Path) -> None:
        self.socket_path = Path(socket_path)
        self.expected_datapath: int | None = None
        self.refused = 0  # connections closed for a wrong peer or datapath id
        self.connected = threading.Event()
        self.on_connect: list[Callable[[Connection], None]] = []
        self._conn: Connection | None = None
        self._lock = threading.Lock()
        self._barriers: dict[int, Future[None]] = {}
        self._errors: dict[int, str] = {}
        self._stats: dict[int, tuple[list[FlowStat], Future[list[FlowStat]]]] = {}
        self._listener: socket.socket | None = None

    # -- lifecycle --------------------------------------------------------------------------------

    def start(self) -> None:
        """Bind the listening socket (raises OSError now if another process listens there) and
        accept in the background."""
        self._listener = bind_private(self.socket_path)
        threading.Thread(target=self._accept_loop, name="openflow-accept", daemon=True).start()

    def expect_datapath(self, datapath_id: int) -> None:
        """Accept only a switch whose features reply carries *datapath_id* (the bridge's, as set)."""
        self.expected_datapath = datapath_id

    def stop(self) -> None:
        if self._listener is not None:
            self._listener.close()
            with contextlib.suppress(FileNotFoundError):
                self.socket_path.unlink()
        conn = self._conn
        if conn is not None:
            conn.close()

    def _accept_loop(self) -> None:
        assert self._listener is not None
        while True:
            try:
                sock, _ = self._listener.accept()
            except OSError:
                return  # stopped
            uid = peer_uid(sock)
            if uid != os.geteuid():  # the socket's mode already keeps others out; never trust it alone
                LOG.warning("refused an OpenFlow connection on %s from uid %d", self.socket_path, uid)
                self.refused += 1
                sock.close()
                continue
            conn = Connection(sock, f"uid {uid} on {self.socket_path}")
            threading.Thread(target=self._serve, args=(conn,), name="openflow-reader", daemon=True).start()

    # -- the reader -----------------------------------------------------------------------------

    def _serve(self, conn: Connection) -> None:
        try:
            conn.send(message(OFPT_HELLO, 1, _HELLO_BITMAP) + message(OFPT_FEATURES_REQUEST, 2))
            self._read(conn)
        except (OSError, ValueError) as exc:  # ValueError: select() on a socket closed meanwhile (replaced)
            LOG.debug("switch connection %s: %s", conn.peer, exc)
        finally:
            conn.close()
            self._lost(conn)

    def _read(self, conn: Connection) -> None:
        buf, misses = b"", 0
        while True:
            readable, _, _ = select.select([conn.sock], [], [], ECHO_INTERVAL)
            if not readable:
                misses += 1
                if misses > ECHO_MISSES:
                    LOG.warning("switch %s stopped answering echo requests; dropping the connection", conn.peer)
                    return
                conn.send(message(OFPT_ECHO_REQUEST, 0))
                continue
            chunk = conn.sock.recv(1 << 20)
            if not chunk:
                return
            misses = 0
            buf += chunk
            while len(buf) >= HEADER.size:
                version, msg_type, length, xid = HEADER.unpack_from(buf)
                if length < HEADER.size:
                    LOG.error("switch %s sent a message of length %d; dropping the connection", conn.peer, length)
                    return
                if len(buf) < length:
                    break
                body, buf = buf[HEADER.size:length], buf[length:]
                self._dispatch(conn, version, msg_type, xid, body)

    def _dispatch(self, conn: Connection, version: int, msg_type: int, xid: int, body: bytes) -> None:
        if msg_type in (OFPT_BARRIER_REPLY, OFPT_ERROR, OFPT_MULTIPART_REPLY) and conn is not self._conn:
            # Replies count only from the accepted switch: a peer still in (or failing) its handshake
            # must not answer the agent's barriers, inject errors or forge flow statistics.
            LOG.debug("ignored message type %d from %s (not the accepted switch)", msg_type, conn.peer)
        elif msg_type == OFPT_BARRIER_REPLY:
            with self._lock:
                fut = self._barriers.pop(xid, None)
            if fut is not None and not fut.done():
                fut.set_result(None)
        elif msg_type == OFPT_ERROR:
            err_type, code = _ERROR.unpack_from(body) if len(body) >= _ERROR.size else (-1, -1)
            text = f"OpenFlow error type={err_type} code={code} xid={xid:#x}"
            LOG.error(text)
            with self._lock:
                self._errors[xid] = text
        elif msg_type == OFPT_MULTIPART_REPLY:
            self._multipart(xid, body)
        elif msg_type == OFPT_ECHO_REQUEST:
            conn.send(message(OFPT_ECHO_REPLY, xid, body))
        elif msg_type == OFPT_FEATURES_REPLY:
            self._features(conn, body)
        elif msg_type == OFPT_HELLO and version < OFP_VERSION:
            LOG.error("switch %s speaks OpenFlow version %d only; the agent needs 1.3", conn.peer, version)
            conn.close()
        # echo replies, port status, packet-ins, bundle control replies: nothing to do

    def _features(self, conn: Connection, body: bytes) -> None:
        (conn.datapath_id,) = struct.unpack_from("!Q", body)
        if conn.datapath_id != self.expected_datapath:
            LOG.warning("refused switch %s: datapath %016x, expected %s", conn.peer, conn.datapath_id,
                        "none yet" if self.expected_datapath is None else f"{self.expected_datapath:016x}")
            self.refused += 1
            conn.close()  # its reader ends; _lost() leaves the current connection alone
            return
        with self._lock:
            old, self._conn = self._conn, conn
            pending = self._take_pending() if old is not None else []
        if old is not None:  # the bridge reconnected: the old connection is dead to it
            old.close()
            _fail(pending)
        LOG.info("switch connected: datapath %016x from %s", conn.datapath_id, conn.peer)
        self.connected.set()
        hooks = list(self.on_connect)
        threading.Thread(target=lambda: [hook(conn) for hook in hooks], name="openflow-connected",
                         daemon=True).start()

    def _multipart(self, xid: int, body: bytes) -> None:
        if len(body) < _MULTIPART.size:
            return
        mp_type, flags = _MULTIPART.unpack_from(body)
        if mp_type != OFPMP_FLOW:
            return
        with self._lock:
            entry = self._stats.get(xid)
            if entry is None:
                return
            entry[0].extend(parse_flow_stats(body[_MULTIPART.size:]))
            done = not flags & OFPMPF_REPLY_MORE
            if done:
                del self._stats[xid]
        if done and not entry[1].done():
            entry[1].set_result(entry[0])

    def _lost(self, conn: Connection) -> None:
        with self._lock:
            if self._conn is not conn:
                return  # a connection that never finished its handshake, or one already replaced
            self._conn = None
            self.connected.clear()
            pending = self._take_pending()
        LOG.warning("switch disconnected (%s)", conn.peer)
        _fail(pending)

    def _take_pending(self) -> list[Future]:
        """What is waited for (asked on the connection that is going away); hold ``_lock``."""
        pending: list[Future] = [*self._barriers.values(), *(f for _, f in self._stats.values())]
        self._barriers.clear()
        self._stats.clear()
        return pending

    # -- used by the controller -------------------------------------------------------------------

    def connection(self) -> Connection:
        conn = self._conn
        if conn is None:
            raise ConnectionError("no switch connected to the controller")
        return conn

    def expect_barrier(self, xid: int) -> Future[None]:
        fut: Future[None] = Future()
        with self._lock:
            self._barriers[xid] = fut
        return fut

    def expect_stats(self, xid: int) -> Future[list[FlowStat]]:
        fut: Future[list[FlowStat]] = Future()
        with self._lock:
            self._stats[xid] = ([], fut)
        return fut

    def forget(self, xid: int) -> None:
        """Stop waiting for *xid* (the caller gave up on it)."""
        with self._lock:
            self._barriers.pop(xid, None)
            self._stats.pop(xid, None)

    def take_errors(self, xids: range) -> list[str]:
        with self._lock:
            found = [x for x in self._errors if x in xids]
            return [self._errors.pop(x) for x in found]
