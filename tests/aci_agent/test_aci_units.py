"""ACI mode without processes: netmaster objects -> DesiredState, the pipeline per EPG segment, and which
endpoints get a gratuitous ARP."""

from __future__ import annotations

import struct

from agent.announce import AnnounceSchedule, announcements, garp_frame
from agent.netmaster_state import NmObject, build_state
from agent.ovs.flow import Flow
from agent.pipeline import build
from agent.pipeline.tables import Table
from agent.pipeline.view import DatapathView
from agent.state import DesiredState, Endpoint, EndpointGroup, Network, Policy, Rule

NET = Network("t", "net", "vlan", "10.1.0.0/24", vlan=100, gateway="10.1.0.254")


def _state(synced: float = 0.0, **kw: object) -> DesiredState:
    rules = (Rule("1", "in", "deny", protocol="tcp"), Rule("2", "in", "allow", protocol="tcp", port=8000,
                                                          from_group="a"))
    return DesiredState(
        infra="aci", networks=(NET,),
        groups=(EndpointGroup("t", "a", 1, "net", vlan=201, aci_synced=synced),
                EndpointGroup("t", "b", 2, "net", ("p",), vlan=202)),
        policies=(Policy("t", "p", rules),),
        endpoints=(Endpoint("a1", "t", "net", "10.1.0.1", "h1", group="a"),
                   Endpoint("a2", "t", "net", "10.1.0.2", "h2", group="a"),
                   Endpoint("b1", "t", "net", "10.1.0.3", "h1", group="b"),
                   Endpoint("x", "t", "net", "10.1.0.9", "h1")), **kw)  # no EPG known (yet)


def _view(state: DesiredState, ports: dict[str, int] | None = None) -> DatapathView:
    ports = {"a1": 16, "b1": 17, "x": 18} if ports is None else ports
    return DatapathView(state, "h1", {"t": 1}, ports, has_uplink=True)


def _texts(flows: list[Flow], table: Table) -> list[str]:
    return [f.ofctl() for f in flows if f.table == table]


def test_uplink_carries_each_epg_vlan_and_never_the_network_vlan() -> None:
    flows = build(_view(_state()))
    classify = _texts(flows, Table.CLASSIFIER)
    assert any("in_port=2,dl_vlan=201" in f for f in classify)
    assert any("in_port=2,dl_vlan=202" in f for f in classify)
    out = _texts(flows, Table.OUTPUT)
    tags = {f.split("mod_vlan_vid:")[1].split(",")[0] for f in out if "mod_vlan_vid" in f}
    assert tags == {"201", "202"}  # to the uplink, and the ARP floods' copy to it
    assert not any("dl_vlan=100" in f or "vlan_vid:100" in f or "reg4=100" in f for f in (f.ofctl() for f in flows))
    # the endpoint without a known EPG is not programmed at all
    assert not any("in_port=18" in f.ofctl() for f in flows)


def test_no_local_policy_and_no_conntrack() -> None:
    flows = build(_view(_state()))
    for table in (Table.DST_EPG, Table.EGRESS_POLICY, Table.INGRESS_POLICY):
        policy = [f for f in flows if f.table == table]
        assert [(f.priority, f.match.fields, f.actions) for f in policy] == [(0, (), ())], table
        assert policy[0].goto is not None
    assert not any("reg2=" in f for f in _texts(flows, Table.SRC_EPG))
    assert not any("ct(" in f.ofctl() for f in flows)
    # the same state outside ACI mode does compile the policy
    plain = build(_view(DesiredState(**_plain_kwargs(_state()))))
    assert any("tp_dst=8000" in f for f in _texts(plain, Table.INGRESS_POLICY))


def _plain_kwargs(state: DesiredState) -> dict[str, object]:
    return {"networks": state.networks, "groups": state.groups, "policies": state.policies,
            "endpoints": state.endpoints}


def test_other_epg_goes_to_the_fabric_even_when_local() -> None:
    flows = _texts(build(_view(_state())), Table.L2_FORWARDING_CALC)
    a1, b1, a2 = "02:02:0a:01:00:01", "02:02:0a:01:00:03", "02:02:0a:01:00:02"
    # from EPG a (reg4=201) to b1 (local, EPG b): uplink, not its port 17
    to_b1 = [f for f in flows if "reg4=201" in f and f"dl_dst={b1}" in f]
    assert len(to_b1) == 1
    assert "load:0x2->NXM_NX_REG1[]" in to_b1[0], to_b1
    # within EPG b, b1 is its local port; within EPG a, a2 (remote) is the uplink, a1 its port
    assert any("reg4=202" in f and f"dl_dst={b1}" in f and "load:0x11->NXM_NX_REG1[]" in f for f in flows)
    assert any("reg4=201" in f and f"dl_dst={a2}" in f and "load:0x2->NXM_NX_REG1[]" in f for f in flows)
    assert any("reg4=202" in f and f"dl_dst={a1}" in f and "load:0x2->NXM_NX_REG1[]" in f for f in flows)


def test_arp_answers_only_the_same_epg_and_never_the_gateway() -> None:
    flows = _texts(build(_view(_state())), Table.ARP_RESPONDER)
    answered = {(f.split("reg4=")[1].split(",")[0].split(" ")[0], f.split("arp_tpa=")[1].split(",")[0])
                for f in flows if "arp_op=1" in f and "set_field:2->arp_op" in f}
    assert answered == {("201", "10.1.0.1"), ("201", "10.1.0.2"), ("202", "10.1.0.3")}
    # a local endpoint's request for its own address (its gratuitous ARP) is flooded, not answered
    own = [f for f in flows if "in_port=16" in f and "arp_tpa=10.1.0.1" in f]
    assert len(own) == 1
    assert f"goto_table:{int(Table.L2_FORWARDING_CALC)}" in own[0]


def test_routing_fwd_mode_is_ignored_in_aci_mode() -> None:
    flows = build(_view(_state(fwd_mode="routing")))
    assert not any("00:00:11:11:11:11" in f.ofctl() for f in flows)


def test_state_from_netmaster_objects() -> None:
    objs = [
        NmObject("global", "global", {"fwdMode": "bridge", "networkInfraType": "aci"}, {}),
        NmObject("network", "t:net", {"tenantName": "t", "networkName": "net", "encap": "vlan",
                                      "subnet": "10.1.0.0/24", "gateway": "10.1.0.254"}, {"pktTag": 100}),
        NmObject("endpointGroup", "t:a", {"tenantName": "t", "groupName": "a", "networkName": "net"},
                 {"endpointGroupId": 1, "pktTag": 201, "aciVlan": 201}),
        NmObject("endpointGroup", "t:b", {"tenantName": "t", "groupName": "b", "networkName": "net"},
                 {"endpointGroupId": 2, "pktTag": 202, "aciVlan": 202}),
        NmObject("appProfile", "t:app", {"tenantName": "t", "appProfileName": "app", "endpointGroups": ["a"]}),
        NmObject("appProfile", "t:old", {"tenantName": "t", "appProfileName": "old", "endpointGroups": ["a", "b"]}),
        NmObject("aciSync", "t:app", {"state": "synced", "lastSync": 1000.5}),
        NmObject("aciSync", "t:old", {"state": "failed", "lastSync": 2000.0}),  # not synced: not counted
    ]
    state = build_state(objs, {}, "h1", 7)
    assert state.aci
    a, b = state.group("t", "a"), state.group("t", "b")
    assert a is not None
    assert b is not None
    assert (a.vlan, a.aci_synced) == (201, 1000.5)
    assert (b.vlan, b.aci_synced) == (202, 0.0)
    plain = build_state([NmObject("global", "global", {"fwdMode": "bridge"}, {}), *objs[1:]], {}, "h1", 8)
    assert not plain.aci
    assert plain.group("t", "a").vlan == 0


def test_announcements_on_add_move_and_push() -> None:
    first = _view(_state())
    assert sorted(ep.id for ep, _ in announcements(None, first)) == ["a1", "b1"]
    assert list(announcements(first, _view(_state()))) == []
    pushed = _view(_state(synced=5.0))
    assert [(ep.id, port) for ep, port in announcements(first, pushed)] == [("a1", 16)]
    moved = _view(_state(synced=5.0), {"a1": 16, "b1": 19})
    assert [ep.id for ep, _ in announcements(pushed, moved)] == ["b1"]
    plain = DatapathView(DesiredState(**_plain_kwargs(_state())), "h1", {"t": 1}, {"a1": 16}, has_uplink=True)
    assert list(announcements(None, plain)) == []


def test_garp_frame_is_an_arp_request_for_its_own_address() -> None:
    frame = garp_frame("02:02:0a:01:00:01", "10.1.0.1")
    assert len(frame) == 60
    assert frame[:6] == b"\xff" * 6
    assert frame[6:12].hex() == "02020a010001"
    assert struct.unpack("!H", frame[12:14])[0] == 0x0806
    op, sha, spa, tpa = struct.unpack("!H", frame[20:22])[0], frame[22:28], frame[28:32], frame[38:42]
    assert op == 1
    assert sha.hex() == "02020a010001"
    assert spa == tpa == bytes([10, 1, 0, 1])


def test_announcements_repeat_on_schedule_until_done_or_gone() -> None:
    sched = AnnounceSchedule((1.0, 2.0, 4.0))
    sched.sent(["a", "b"], now=100.0)
    assert sched.take_due(100.5, {"a", "b"}) == []
    assert sorted(sched.take_due(101.0, {"a", "b"})) == ["a", "b"]
    assert sched.take_due(101.5, {"a", "b"}) == []
    assert sched.take_due(110.0, {"a"}) == ["a"]  # late: the missed repeats collapse into one; b is gone
    assert len(sched) == 0
    sched.sent(["a"], now=200.0)
    sched.sent(["a"], now=200.8)  # a new announcement restarts the repeats
    assert sched.take_due(201.0, {"a"}) == []
    assert sched.take_due(201.8, {"a"}) == ["a"]
