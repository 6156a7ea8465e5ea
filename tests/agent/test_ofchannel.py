"""agent.ovs.ofchannel over real sockets, with a scripted switch on the other end: the handshake,
echo handling, routing of replies by xid, and what happens when the switch goes quiet or reconnects;
who may connect (root only, the expected datapath id only) and what a refused peer can do (nothing).
The message layouts are checked byte for byte against os-ken's encoder."""

from __future__ import annotations

import concurrent.futures
import os
import shutil
import socket
import stat
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from os_ken.ofproto import ofproto_v1_3 as ofp
from os_ken.ofproto import ofproto_v1_3_parser as parser

from agent.ovs import ofchannel
from agent.ovs.ofcontroller import OpenFlowController
from testbed.waiting import eventually

DPID = 0xABC


class _FakeDatapath:
    """What os-ken's message classes need to serialize."""

    ofproto = ofp
    ofproto_parser = parser


class Switch:
    """The switch side of one connection, driven by the test."""

    def __init__(self, path: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(5)
        self.sock.connect(str(path))
        self.buf = b""

    def recv(self) -> tuple[int, int, bytes]:
        while True:
            if len(self.buf) >= 8:
                _v, msg_type, length, xid = struct.unpack_from("!BBHI", self.buf)
                if len(self.buf) >= length:
                    body, self.buf = self.buf[8:length], self.buf[length:]
                    return msg_type, xid, body
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            self.buf += chunk

    def send(self, msg_type: int, xid: int, body: bytes = b"") -> None:
        self.sock.sendall(ofchannel.message(msg_type, xid, body))

    def handshake(self, dpid: int = DPID) -> None:
        seen = {self.recv()[0], self.recv()[0]}
        assert seen == {ofchannel.OFPT_HELLO, ofchannel.OFPT_FEATURES_REQUEST}
        self.send(ofchannel.OFPT_HELLO, 1)
        self.send(ofchannel.OFPT_FEATURES_REPLY, 2, struct.pack("!QIBB2xII", dpid, 0, 254, 0, 0, 0))

    def until_closed(self) -> None:
        """Read (and drop) messages until the controller closes the connection (ConnectionError)."""
        while True:
            self.recv()

    def close(self) -> None:
        self.sock.close()


def _flow_stats_entry(table: int, priority: int, cookie: int, packets: int) -> bytes:
    """One ofp_flow_stats (OpenFlow 1.3) matching in_port=3, with no instructions."""
    match = struct.pack("!HHIII", 1, 12, 0x80000004, 3, 0)  # OXM in_port, padded to 16
    head = struct.Struct("!HBxIIHHHH4xQQQ")
    return head.pack(head.size + len(match), table, 1, 0, priority, 0, 0, 0, cookie, packets, packets * 60) + match



@pytest.fixture
def controller(tmp_path: Path) -> Iterator[OpenFlowController]:
    ctl = OpenFlowController(tmp_path / "run" / "openflow.sock")
    ctl.start()
    ctl.expect_datapath(DPID)
    yield ctl
    ctl.stop()


def test_handshake_then_replies_reach_their_waiters(controller: OpenFlowController) -> None:
    connects: list[object] = []
    controller.on_connect.append(connects.append)
    switch = Switch(controller.socket_path)
    switch.handshake()
    assert controller.wait_connected(5)
    eventually(lambda: connects, 5, "the on_connect hook")
    assert [c.datapath_id for c in connects] == [DPID]  # type: ignore[attr-defined]

    # echo requests from the switch are answered with the same xid and payload
    switch.send(ofchannel.OFPT_ECHO_REQUEST, 77, b"ping")
    assert switch.recv() == (ofchannel.OFPT_ECHO_REPLY, 77, b"ping")

    # flow statistics: two multipart replies (the first flagged "more") make one answer
    result: list[list[ofchannel.FlowStat]] = []
    reader = threading.Thread(target=lambda: result.append(controller.flow_stats(timeout=5)))
    reader.start()
    msg_type, xid, _ = switch.recv()
    assert msg_type == ofchannel.OFPT_MULTIPART_REQUEST
    rows = ((0, 10, 1 << 48, 5), (4, 200, 2 << 48, 0), (9, 0, 7, 1))
    entries = [_flow_stats_entry(t, p, c, n) for t, p, c, n in rows]
    for entry in entries:  # the hand-made layout is what os-ken's reply parser reads too
        theirs = parser.OFPFlowStats.parser(entry, 0)
        assert len(entry) == theirs.length
    switch.send(ofchannel.OFPT_MULTIPART_REPLY, xid, struct.pack("!HH4x", 1, 1) + entries[0] + entries[1])
    switch.send(ofchannel.OFPT_MULTIPART_REPLY, xid, struct.pack("!HH4x", 1, 0) + entries[2])
    reader.join(5)
    assert result == [[ofchannel.FlowStat(0, 10, 1 << 48, 5, 300), ofchannel.FlowStat(4, 200, 2 << 48, 0, 0),
                       ofchannel.FlowStat(9, 0, 7, 1, 60)]]
    switch.close()


def test_requests_are_byte_identical_to_os_ken() -> None:
    dp = _FakeDatapath()
    req = parser.OFPFlowStatsRequest(dp, 0, ofp.OFPTT_ALL, ofp.OFPP_ANY, ofp.OFPG_ANY, 0, 0, parser.OFPMatch())
    req.xid = 0x11
    req.serialize()
    assert ofchannel.flow_stats_request(0x11) == bytes(req.buf)
    frame = bytes(range(60))
    out = parser.OFPPacketOut(dp, buffer_id=ofp.OFP_NO_BUFFER, in_port=7,
                              actions=[parser.OFPActionOutput(ofp.OFPP_TABLE)], data=frame)
    out.xid = 0x12
    out.serialize()
    assert ofchannel.packet_out_to_table(0x12, 7, frame) == bytes(out.buf)


def test_a_quiet_switch_is_pinged_then_dropped(controller: OpenFlowController) -> None:
    switch = Switch(controller.socket_path)
    switch.handshake()
    assert controller.wait_connected(5)
    started = time.monotonic()
    echoes = 0
    switch.sock.settimeout(10)
    try:
        while True:
            msg_type, _xid, _body = switch.recv()
            echoes += msg_type == ofchannel.OFPT_ECHO_REQUEST
    except ConnectionError:
        pass
    elapsed = time.monotonic() - started
    assert echoes == ofchannel.ECHO_MISSES
    assert ofchannel.ECHO_INTERVAL * ofchannel.ECHO_MISSES <= elapsed < 10
    # the socket closed first; the controller's bookkeeping follows in its reader thread
    eventually(lambda: not controller.connected, 5, "the controller to drop the quiet switch")
    with pytest.raises(ConnectionError):
        controller.flow_stats(timeout=1)


def test_a_reconnecting_switch_replaces_the_old_connection(controller: OpenFlowController) -> None:
    old = Switch(controller.socket_path)
    old.handshake()
    assert controller.wait_connected(5)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pending = pool.submit(controller.flow_stats, 10)
        assert old.recv()[0] == ofchannel.OFPT_MULTIPART_REQUEST  # asked on the old connection
        new = Switch(controller.socket_path)
        new.handshake()
        with pytest.raises(ConnectionError):  # failed at once, not after its 10 s timeout
            pending.result(3)
    assert controller.connected
    with pytest.raises(ConnectionError):
        old.recv()  # closed by the controller
    # the new connection works
    assert controller.channel.connection().peer != ""
    new.send(ofchannel.OFPT_ECHO_REQUEST, 5)
    assert new.recv() == (ofchannel.OFPT_ECHO_REPLY, 5, b"")
    new.close()


def test_the_socket_is_root_only(controller: OpenFlowController) -> None:
    mode = controller.socket_path.stat()
    assert stat.S_ISSOCK(mode.st_mode)
    assert stat.S_IMODE(mode.st_mode) == 0o600
    assert mode.st_uid == 0
    assert controller.target == f"unix:{controller.socket_path}"


_CONNECT_AS_NOBODY = """
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
try:
    s.connect(sys.argv[1])
except PermissionError:
    print("refused")
    sys.exit(0)
s.settimeout(10)
print("connected", len(s.recv(100)))
"""


def _as_nobody(path: Path) -> str:
    """Connect to *path* from another process running as user nobody; what it saw."""
    proc = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", sys.executable, "-c",
                           _CONNECT_AS_NOBODY, str(path)], capture_output=True, text=True, timeout=30)
    return proc.stdout.strip() or proc.stderr.strip()


def test_another_user_can_neither_connect_nor_be_served() -> None:
    run = Path(tempfile.mkdtemp(prefix="ofch", dir="/tmp"))  # pytest's tmp_path is root-only itself
    os.chmod(run, 0o755)  # so every user can reach the socket: only its own mode and the peer check remain
    controller = OpenFlowController(run / "openflow.sock")
    controller.start()
    controller.expect_datapath(DPID)
    try:
        switch = Switch(controller.socket_path)
        switch.handshake()
        assert controller.wait_connected(5)
        assert _as_nobody(controller.socket_path) == "refused", "the socket's mode keeps other users out"
        # and were the mode loosened, the peer credentials still would
        os.chmod(controller.socket_path, 0o666)
        assert _as_nobody(controller.socket_path) == "connected 0", "closed at once, not even a HELLO"
        assert controller.channel.refused == 1
        assert controller.channel.connection().datapath_id == DPID
        switch.send(ofchannel.OFPT_ECHO_REQUEST, 9)
        assert switch.recv() == (ofchannel.OFPT_ECHO_REPLY, 9, b"")
        switch.close()
    finally:
        controller.stop()
        shutil.rmtree(run, ignore_errors=True)


def test_a_foreign_datapath_is_refused_and_cannot_answer_for_the_switch(controller: OpenFlowController) -> None:
    switch = Switch(controller.socket_path)
    switch.handshake()
    assert controller.wait_connected(5)
    ours = controller.channel.connection()
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pending = pool.submit(controller.flow_stats, 10)
        msg_type, xid, _ = switch.recv()
        assert msg_type == ofchannel.OFPT_MULTIPART_REQUEST
        # the intruder answers before the switch: barrier replies, errors and forged statistics,
        # for the xid it saw nothing of but can guess, then completes a handshake with its own datapath id
        intruder = Switch(controller.socket_path)
        intruder.send(ofchannel.OFPT_MULTIPART_REPLY, xid, struct.pack("!HH4x", 1, 0) + _flow_stats_entry(0, 1, 1, 1))
        intruder.send(ofchannel.OFPT_ERROR, xid, struct.pack("!HH", 1, 1))
        intruder.send(ofchannel.OFPT_BARRIER_REPLY, xid)
        intruder.handshake(dpid=DPID + 1)
        with pytest.raises(ConnectionError):
            intruder.until_closed()  # refused: the controller closes it
        assert controller.channel.connection() is ours, "the switch's connection stays"
        assert not pending.done(), "the forged reply did not answer the agent"
        switch.send(ofchannel.OFPT_MULTIPART_REPLY, xid, struct.pack("!HH4x", 1, 0) + _flow_stats_entry(4, 9, 2, 3))
        assert pending.result(5) == [ofchannel.FlowStat(4, 9, 2, 3, 180)]
    assert controller.channel.refused == 1
    assert controller.channel.take_errors(range(0, 1 << 32)) == [], "the intruder's error was not recorded"
    switch.close()


def test_nothing_is_accepted_before_the_datapath_is_known(tmp_path: Path) -> None:
    ctl = OpenFlowController(tmp_path / "openflow.sock")
    ctl.start()
    try:
        switch = Switch(ctl.socket_path)
        switch.handshake()
        with pytest.raises(ConnectionError):
            switch.until_closed()
        assert not ctl.connected
    finally:
        ctl.stop()
    assert not ctl.socket_path.exists(), "stop removes the socket"


def _agent(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    from agent.state import DesiredState

    state = tmp_path / "state.json"
    DesiredState().save(state)
    return subprocess.run([sys.executable, "-m", "agent", "--host-label", "h1", "--state-file", str(state), *args],
                          capture_output=True, text=True, timeout=30, cwd=Path(__file__).resolve().parents[2])


def test_agent_start_with_the_controller_socket_taken_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "openflow.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as taken:
        taken.bind(str(path))
        taken.listen(1)
        proc = _agent(tmp_path, "--of-socket", str(path))
    assert proc.returncode == 2
    assert f"cannot listen for the bridge's OpenFlow connection on unix:{path}: another process listens" in proc.stderr
    assert "Traceback" not in proc.stderr
    not_a_socket = tmp_path / "file"
    not_a_socket.write_text("")
    proc = _agent(tmp_path, "--of-socket", str(not_a_socket))
    assert proc.returncode == 2
    assert "exists and is not a socket" in proc.stderr
    assert not_a_socket.read_text() == "", "left alone"
