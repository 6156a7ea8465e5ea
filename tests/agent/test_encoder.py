"""The fast FlowMod encoder must produce exactly os-ken's bytes."""

from __future__ import annotations

from os_ken.ofproto import ofproto_v1_3 as ofp
from os_ken.ofproto import ofproto_v1_3_parser as parser

from agent.ovs.encoder import OFPMC_ADD, OFPMC_DELETE, OFPMC_MODIFY, FlowModEncoder, meter_mod
from agent.ovs.flow import Flow, Match
from agent.pipeline import build
from agent.pipeline.conjunction import MatchRule, compile_rules
from agent.pipeline.tables import Table
from agent.pipeline.view import DatapathView
from agent.state import DesiredState, Endpoint, EndpointGroup, Host, Network, Policy, Qos, Rule


class _Datapath:
    ofproto = ofp
    ofproto_parser = parser


def _os_ken_bytes(flow: Flow, command: int, cookie: int) -> bytes:
    dp = _Datapath()
    acts = [x for a in flow.actions for x in a.to_ofp(parser)]
    inst = [parser.OFPInstructionMeter(flow.meter)] if flow.meter else []
    if acts:
        inst.append(parser.OFPInstructionActions(ofp.OFPIT_APPLY_ACTIONS, acts))
    if flow.goto is not None:
        inst.append(parser.OFPInstructionGotoTable(flow.goto))
    msg = parser.OFPFlowMod(dp, cookie=cookie, cookie_mask=0, table_id=flow.table, command=command,
                            priority=flow.priority, match=parser.OFPMatch(**flow.match.as_kwargs()),
                            instructions=inst, out_port=ofp.OFPP_ANY, out_group=ofp.OFPG_ANY)
    msg.xid = 7
    msg.serialize()
    return bytes(msg.buf)


def test_encoder_matches_os_ken_for_every_flow_shape() -> None:
    vlan = Network("t1", "v", "vlan", "10.2.0.0/24", vlan=10, gateway="10.2.0.254")
    vxlan = Network("t1", "x", "vxlan", "10.1.0.0/24", vni=5000, gateway="10.1.0.254")
    state = DesiredState(
        fwd_mode="routing", networks=(vlan, vxlan),
        hosts=(Host("h1", "192.0.2.1"), Host("h2", "192.0.2.2")),
        groups=(EndpointGroup("t1", "g", 10, "x", ("p",), qos=Qos("t1:q", rate_kbps=5000, dscp=10)),),
        policies=(Policy("t1", "p", (Rule("1", "in", "deny", protocol="tcp"),
                                     Rule("2", "out", "allow", 9, to_ip="10.9.0.0/16", protocol="udp",
                                          port=53))),),
        endpoints=(Endpoint("a", "t1", "x", "10.1.0.1", "h1", group="g"),
                   Endpoint("b", "t1", "x", "10.1.0.2", "h2", group="g"),
                   Endpoint("c", "t1", "v", "10.2.0.3", "h2")))
    flows = build(DatapathView(state, "h1", {"t1": 1}, {"a": 16}, True, True))
    flows += build(DatapathView(state, "h1", {"t1": 1}, {"a": 16}, True, True, (2, 3)))  # a bonded uplink
    sets = [tuple(Match.of(eth_type=0x800, ipv4_src=f"10.8.0.{i}") for i in range(1, 4)),
            tuple(Match.of(reg3=g) for g in (5, 6, 7)),
            tuple(Match.of(eth_type=0x800, ip_proto=17, udp_dst=p) for p in (53, 123))]
    flows += compile_rules([MatchRule("r", Table.INGRESS_POLICY, 3, True, *sets)], Table.CT_COMMIT)
    assert any(f.match.fields and f.match.fields[0][0] == "conj_id" for f in flows)
    assert any(f.meter for f in flows)
    enc = FlowModEncoder()
    assert len(flows) > 30
    for flow in flows:
        for command in (0, 4):
            mine = enc.flow_mod(flow, command, cookie=0x1234, xid=7)
            assert mine == _os_ken_bytes(flow, command, 0x1234), flow.ofctl()


def test_meter_mod_matches_os_ken() -> None:
    flags = ofp.OFPMF_KBPS | ofp.OFPMF_BURST | ofp.OFPMF_STATS
    for command, bands in ((OFPMC_ADD, [parser.OFPMeterBandDrop(10_000, 2000)]),
                           (OFPMC_MODIFY, [parser.OFPMeterBandDrop(20_000, 4000)]), (OFPMC_DELETE, [])):
        msg = parser.OFPMeterMod(_Datapath(), command=command, flags=flags, meter_id=17, bands=bands)
        msg.xid = 9
        msg.serialize()
        rate, burst = (bands[0].rate, bands[0].burst_size) if bands else (0, 0)
        assert meter_mod(command, 17, rate, burst, xid=9) == bytes(msg.buf)
