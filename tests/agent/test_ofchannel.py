"""agent.ovs.ofchannel over real sockets, with a scripted switch on the other end: the handshake,
echo handling, routing of replies by xid, and what happens when the switch goes quiet or reconnects.
The message layouts are checked byte for byte against os-ken's encoder."""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from os_ken.ofproto import ofproto_v1_3 as ofp
from os_ken.ofproto import ofproto_v1_3_parser as parser

from agent.ovs import ofchannel
from agent.ovs.ofcontroller import OpenFlowController
from testbed.ports import free_port


class _FakeDatapath:
    """What os-ken's message classes need to serialize."""

    ofproto = ofp
    ofproto_parser = parser


class Switch:
    """The switch side of one connection, driven by the test."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
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

    def handshake(self, dpid: int = 0xABC) -> None:
        seen = {self.recv()[0], self.recv()[0]}
        assert seen == {ofchannel.OFPT_HELLO, ofchannel.OFPT_FEATURES_REQUEST}
        self.send(ofchannel.OFPT_HELLO, 1)
        self.send(ofchannel.OFPT_FEATURES_REPLY, 2, struct.pack("!QIBB2xII", dpid, 0, 254, 0, 0, 0))

    def close(self) -> None:
        self.sock.close()


def _flow_stats_entry(table: int, priority: int, cookie: int, packets: int) -> bytes:
    """One ofp_flow_stats (OpenFlow 1.3) matching in_port=3, with no instructions."""
    match = struct.pack("!HHIII", 1, 12, 0x80000004, 3, 0)  # OXM in_port, padded to 16
    head = struct.Struct("!HBxIIHHHH4xQQQ")
    return head.pack(head.size + len(match), table, 1, 0, priority, 0, 0, 0, cookie, packets, packets * 60) + match



@pytest.fixture
def controller() -> Iterator[OpenFlowController]:
    ctl = OpenFlowController(port=free_port())
    ctl.start()
    yield ctl
    ctl.stop()


def test_handshake_then_replies_reach_their_waiters(controller: OpenFlowController) -> None:
    connects: list[object] = []
    controller.on_connect.append(connects.append)
    switch = Switch(controller.port)
    switch.handshake(dpid=0x1234)
    assert controller.wait_connected(5)
    deadline = time.monotonic() + 5
    while not connects and time.monotonic() < deadline:
        time.sleep(0.01)
    assert [c.datapath_id for c in connects] == [0x1234]  # type: ignore[attr-defined]

    # echo requests from the switch are answered with the same xid and payload
    switch.send(ofchannel.OFPT_ECHO_REQUEST, 77, b"ping")
    assert switch.recv() == (ofchannel.OFPT_ECHO_REPLY, 77, b"ping")

    # flow statistics: two multipart replies (the first flagged "more") make one answer
    import threading

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
    switch = Switch(controller.port)
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
    assert not controller.connected
    with pytest.raises(ConnectionError):
        controller.flow_stats(timeout=1)


def test_a_reconnecting_switch_replaces_the_old_connection(controller: OpenFlowController) -> None:
    old = Switch(controller.port)
    old.handshake(dpid=1)
    assert controller.wait_connected(5)
    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pending = pool.submit(controller.flow_stats, 10)
        assert old.recv()[0] == ofchannel.OFPT_MULTIPART_REQUEST  # asked on the old connection
        new = Switch(controller.port)
        new.handshake(dpid=1)
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


def test_agent_start_with_the_openflow_port_taken_is_a_clear_error(tmp_path: Path) -> None:
    import subprocess
    import sys

    from agent.state import DesiredState

    state = tmp_path / "state.json"
    DesiredState().save(state)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        proc = subprocess.run([sys.executable, "-m", "agent", "--host-label", "h1", "--state-file", str(state),
                               "--of-port", str(port)], capture_output=True, text=True, timeout=30,
                              cwd=Path(__file__).resolve().parents[2])
    assert proc.returncode == 2
    assert f"cannot listen for the bridge's OpenFlow connection on tcp:127.0.0.1:{port}" in proc.stderr
    assert "Traceback" not in proc.stderr
