"""Service load balancing without a datapath: the messages the agent sends, as Open vSwitch's own tools
read and write them, and the flows a service costs."""

from __future__ import annotations

import shutil
import socket
import struct
import subprocess
import threading
from dataclasses import replace
from pathlib import Path

import pytest

from agent.ovs.encoder import FlowModEncoder, ct_flush, group_mod
from agent.ovs.flow import Ct, Feature, GroupAction, Multipath
from agent.pipeline import build, service_lb
from agent.pipeline.tables import Table
from agent.pipeline.view import DatapathView
from agent.state import DesiredState, Endpoint, Host, Network, Service, ServicePort

NET = Network("t1", "net", "vxlan", "10.8.0.0/24", vni=8100)
WEB = Service("t1", "web", "10.8.0.200", (ServicePort(80, 8080, "tcp"), ServicePort(53, 5353, "udp")),
              ("p1", "p2", "p3"))
needs_ofctl = pytest.mark.skipif(shutil.which("ovs-ofctl") is None, reason="needs ovs-ofctl (openvswitch-common)")


def _view(n_clients: int, services: tuple[Service, ...] = (WEB,)) -> DatapathView:
    providers = [Endpoint(f"p{i}", "t1", "net", f"10.8.0.{i}", "h1" if i % 2 else "h2") for i in (1, 2, 3)]
    clients = [Endpoint(f"c{i}", "t1", "net", f"10.8.0.{10 + i}", "h1") for i in range(n_clients)]
    state = DesiredState(networks=(NET,), endpoints=(*providers, *clients), services=services,
                         hosts=(Host("h1", "192.0.2.1"), Host("h2", "192.0.2.2")))
    ports = {"p1": 16, "p3": 17, **{f"c{i}": 18 + i for i in range(n_clients)}}
    return DatapathView(state, "h1", {"t1": 1}, ports, has_tunnel=True)


def test_flows_per_service_do_not_grow_with_clients() -> None:
    few, many = _view(2), _view(60)
    assert [f for f in build(few) if f.feature == Feature.SERVICE] == \
        [f for f in build(many) if f.feature == Feature.SERVICE]
    vip = [f for f in build(many) if f.table == Table.SERVICE_LB and f.feature == Feature.SERVICE]
    assert len(vip) == len(WEB.ports)
    assert list(service_lb.groups(many)) == [service_lb.group_ids((WEB,))["t1:web/tcp/80"]]


def test_group_ids_are_stable_when_other_services_come_and_go() -> None:
    other = Service("t1", "db", "10.8.0.201", (ServicePort(5432, 5432, "tcp"),), ("p2",))
    alone = service_lb.group_ids((WEB,))
    both = service_lb.group_ids((WEB, other))
    assert {k: both[k] for k in alone} == alone
    assert len(set(both.values())) == len(both)


def test_a_provider_removed_leaves_the_other_buckets_as_they_were() -> None:
    before = service_lb.groups(_view(2))
    after = service_lb.groups(_view(2, (replace(WEB, providers=("p1", "p3")),)))
    assert list(before) == list(after)
    (old,), (new,) = before.values(), after.values()
    assert len(old.buckets) == 3
    assert new.buckets == (old.buckets[0], old.buckets[2])


def _ofp_print(message: bytes) -> str:
    return subprocess.run(["ovs-ofctl", "ofp-print", message.hex()], capture_output=True, text=True,
                          check=True).stdout


@needs_ofctl
def test_open_vswitch_reads_the_groups_and_flows_as_written() -> None:
    """ovs-ofctl decodes the group mod and the service flows (ct with nat and exec, multipath) into what
    the agent's own text says (the text inspect and the docs show)."""
    view = _view(2)
    for group in service_lb.groups(view).values():
        printed = " ".join(_ofp_print(group_mod(0, group)).split())
        for bucket in group.buckets:
            assert ",".join(a.text() for a in bucket) in printed, printed
    encoder = FlowModEncoder()
    checked = 0
    for flow in build(view):
        for action in flow.actions:
            if isinstance(action, Ct | Multipath | GroupAction):
                printed = _ofp_print(encoder.flow_mod(flow, 0))
                assert action.text() in printed, (flow.ofctl(), printed)
                checked += 1
    assert checked >= 6  # conntrack lookup and commit, the TCP group, UDP multipath and its 3 DNATs


class _FakeSwitch:
    """Just enough of an OpenFlow 1.3 switch for ovs-ofctl to connect and send one command to."""

    def __init__(self, path: Path) -> None:
        self.server = socket.socket(socket.AF_UNIX)
        self.server.bind(str(path))
        self.server.listen(1)
        self.messages: list[bytes] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        conn, _ = self.server.accept()
        conn.sendall(struct.pack("!BBHI", 4, 0, 8, 1))
        buf = b""
        conn.settimeout(10)
        while True:
            data = conn.recv(65536)
            if not data:
                return
            buf += data
            while len(buf) >= 8 and len(buf) >= struct.unpack_from("!H", buf, 2)[0]:
                length = struct.unpack_from("!H", buf, 2)[0]
                msg, buf = buf[:length], buf[length:]
                self.messages.append(msg)
                kind, xid = msg[1], struct.unpack_from("!I", msg, 4)[0]
                if kind == 5:  # features request
                    conn.sendall(struct.pack("!BBHIQIBB2xII", 4, 6, 32, xid, 1, 0, 1, 0, 0, 0))
                elif kind == 20:  # barrier request
                    conn.sendall(struct.pack("!BBHI", 4, 21, 8, xid))
                elif kind == 2:  # echo request
                    conn.sendall(struct.pack("!BBHI", 4, 3, length, xid) + msg[8:])


@needs_ofctl
def test_conntrack_flush_is_what_ovs_ofctl_ct_flush_sends(tmp_path: Path) -> None:
    """One provider's connections through one service port: zone, protocol, the original direction's
    destination (VIP and port) and the reply direction's source (provider and target port)."""
    switch = _FakeSwitch(tmp_path / "of.sock")
    subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", "ct-flush", f"unix:{tmp_path / 'of.sock'}", "zone=7",
                    "ct_nw_dst=10.8.0.200,ct_nw_proto=6,ct_tp_dst=80",
                    "ct_nw_src=10.8.0.2,ct_nw_proto=6,ct_tp_src=8080"], check=True, capture_output=True, timeout=20)
    switch.thread.join(10)
    sent = [m for m in switch.messages if m[1] == 4]  # OFPT_EXPERIMENTER: the NXT_CT_FLUSH
    assert len(sent) == 1, switch.messages
    xid = struct.unpack_from("!I", sent[0], 4)[0]
    assert ct_flush(7, 6, "10.8.0.200", 80, "10.8.0.2", 8080, xid=xid) == sent[0]


def test_dns_records_answer_within_the_tenant_only() -> None:
    from agent.dns.records import Records
    from agent.state import EndpointGroup

    other = Network("t2", "net", "vxlan", "10.8.0.0/24", vni=8200)
    state = DesiredState(networks=(NET, other), groups=(EndpointGroup("t1", "db", 5, "net"),), services=(WEB,),
                         endpoints=(Endpoint("p1", "t1", "net", "10.8.0.1", "h1", name="Alpha", group="db"),
                                    Endpoint("p2", "t1", "net", "10.8.0.2", "h1", group="db"),
                                    Endpoint("q", "t2", "net", "10.8.0.1", "h1", name="beta")))
    rec = Records.of(state)
    assert rec.answer("t1", "web.", "A").addresses == ("10.8.0.200",)
    assert rec.answer("t1", "WEB.t1.contiv.", "A").addresses == ("10.8.0.200",)
    assert rec.answer("t1", "alpha.t1", "A").addresses == ("10.8.0.1",)
    assert rec.answer("t1", "db", "A").addresses == ("10.8.0.1", "10.8.0.2")
    assert rec.answer("t1", "_53._udp.web.t1.contiv", "SRV").srv == ((53, "web.t1.contiv"),)
    assert rec.answer("t1", "1.0.8.10.in-addr.arpa", "PTR").ptr == ("alpha.t1.contiv",)
    assert rec.answer("t2", "1.0.8.10.in-addr.arpa", "PTR").ptr == ("beta.t2.contiv",)
    assert rec.answer("t1", "beta.t2.contiv", "A").nxdomain
    assert rec.answer("t2", "web.t1.contiv", "A").nxdomain
    assert rec.answer("t2", "web", "A").forward  # not t2's: the host's resolvers decide
    assert rec.answer("t1", "example.org", "A").forward
    assert rec.answer("t1", "web", "AAAA") == rec.answer("t1", "web", "MX")  # the name exists: no data, no error
    assert not rec.answer("t1", "web", "AAAA").nxdomain


def test_dns_kept_replies_follow_the_records_and_the_asker() -> None:
    """The responder's fast path (a kept reply with the new query's id) answers exactly what the slow
    path would: per tenant, only from the records of the moment, never for a forwarded name."""
    import asyncio

    from dnslib import DNSRecord

    from agent.dns.records import Records
    from agent.dns.responder import DnsResponder

    other = Network("t2", "net", "vxlan", "10.8.0.0/24", vni=8200)

    def records(vip: str) -> Records:
        return Records.of(DesiredState(networks=(NET, other), services=(replace(WEB, vip=vip),)))

    def ask(responder: DnsResponder, name: str, tenant: str, qid: int) -> DNSRecord:
        query = DNSRecord.question(name, "A")
        query.header.id = qid
        reply = asyncio.run(responder.handle(bytes(query.pack()), tenant))
        assert reply is not None
        return DNSRecord.parse(reply)

    responder = DnsResponder(upstreams=[])  # nowhere to forward: outside names get SERVFAIL
    try:
        responder.update(records("10.8.0.200"))
        first, second = ask(responder, "web", "t1", 1), ask(responder, "web", "t1", 2)
        assert (first.header.id, second.header.id) == (1, 2)
        assert [str(r.rdata) for r in second.rr] == [str(r.rdata) for r in first.rr] == ["10.8.0.200"]
        assert responder.kept_answers == 1
        other_tenant = ask(responder, "web", "t2", 3)  # the same bytes from t2: t2's answer (forwarded)
        assert other_tenant.header.rcode == 2
        assert not other_tenant.rr
        assert responder.kept_answers == 1
        ask(responder, "web", "t2", 4)
        assert responder.forwarded == 2
        assert responder.kept_answers == 1
        responder.update(records("10.8.0.201"))
        moved = ask(responder, "web", "t1", 5)
        assert [str(r.rdata) for r in moved.rr] == ["10.8.0.201"]
        assert responder.kept_answers == 1
        assert asyncio.run(responder.handle(b"\x00\x01garbage-not-dns", "t1")) is None
    finally:
        responder.stop()
