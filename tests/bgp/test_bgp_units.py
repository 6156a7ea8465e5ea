"""L3 mode without processes: the Bgp object into the desired state, the pipeline's BGP flows, and
netmaster's inspect fields from the agent's answer."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from agent.netmaster_state import NmObject, build_state
from agent.pipeline import bgp_routes, build
from agent.pipeline.tables import ROUTER_MAC, ROUTER_OFPORT, Table
from agent.pipeline.view import BgpView, DatapathView, LearnedRoute
from agent.state import BgpConfig, DesiredState, Endpoint, Host, Network
from netmaster.api.bgp_inspect import bgp_oper

NET = Network("t", "net", "vlan", "10.60.0.0/24", vlan=7, gateway="10.60.0.254")
BGP = BgpConfig("50.1.1.1/24", 65001, 500, ("50.1.1.254", "50.1.1.253"))
ROUTER_PORT_MAC = "02:fe:32:01:01:01"
ROUTES = (LearnedRoute("10.60.0.2/32", "50.1.1.254", "aa:00:00:00:00:fe"),
          LearnedRoute("172.30.1.0/24", "50.1.1.254", "aa:00:00:00:00:fe"))


def _state(bgp: BgpConfig | None = BGP) -> DesiredState:
    return DesiredState(fwd_mode="routing", networks=(NET,), hosts=(Host("h1"), Host("h2")), bgp=bgp,
                        endpoints=(Endpoint("a", "t", "net", "10.60.0.1", "h1"),
                                   Endpoint("b", "t", "net", "10.60.0.2", "h2")))


def _view(bgp: bool = True) -> DatapathView:
    state = _state(BGP if bgp else None)
    return DatapathView(state, "h1", {"t": 1}, {"a": 16}, has_uplink=True,
                        bgp=BgpView("50.1.1.1", ROUTER_PORT_MAC, ROUTES) if bgp else None)


def _table(view: DatapathView, table: Table) -> list[str]:
    return [f.ofctl() for f in build(view) if f.table == table]


def _objects(fwd_mode: str = "routing", infra: str = "default", host: str = "h1") -> list[NmObject]:
    return [NmObject("global", "global", {"fwdMode": fwd_mode, "networkInfraType": infra}),
            NmObject("Bgp", host, {"hostname": host, "routerip": "50.1.1.1/24", "as": "65001",
                                   "neighbor-as": "500", "neighbor": "50.1.1.254,50.1.1.253"})]


def test_the_hosts_bgp_object_becomes_its_bgp_config() -> None:
    assert build_state(_objects(), {}, "h1", 1).bgp == BGP
    assert build_state(_objects(host="h2"), {}, "h1", 1).bgp is None, "another host's object"
    assert build_state(_objects(fwd_mode="bridge"), {}, "h1", 1).bgp is None, "bridge fwdMode"
    assert build_state(_objects(infra="aci"), {}, "h1", 1).bgp is None, "ACI mode"
    broken = _objects()
    broken[1] = NmObject("Bgp", "h1", {**broken[1].object, "as": "x"})
    assert build_state(broken, {}, "h1", 1).bgp is None, "a malformed object is skipped, not fatal"


def test_bgp_config_checks_and_round_trips() -> None:
    assert DesiredState.from_dict(_state().to_dict()).bgp == BGP
    with pytest.raises(ValueError, match="prefix length"):
        BgpConfig("50.1.1.1", 65001, 500)
    with pytest.raises(ValueError, match="router IP"):
        BgpConfig("50.1.1.1/24", 65001, 500, ("50.1.1.1",))
    with pytest.raises(ValueError, match="AS"):
        BgpConfig("50.1.1.1/24", 0, 500)


def test_remote_endpoints_only_through_learned_routes() -> None:
    l3 = _table(_view(), Table.L3_FORWARDING)
    assert not any("nw_dst=10.60.0.2," in f and "mod_dl_dst:02:02" in f for f in l3), "no direct route to b"
    host_route = next(f for f in l3 if "nw_dst=10.60.0.2," in f)
    prefix_route = next(f for f in l3 if "nw_dst=172.30.1.0/24" in f)
    assert "priority=43" in host_route
    assert "priority=35" in prefix_route  # longer prefixes first
    assert f"set_field:{ROUTER_PORT_MAC}->dl_src" in host_route
    assert "set_field:aa:00:00:00:00:fe->dl_dst" in host_route
    assert "load:0x0->NXM_NX_REG4[]" in host_route  # the routed segment: untagged to the uplink
    arp = _table(_view(), Table.ARP_RESPONDER)
    assert any("arp_tpa=10.60.0.2" in f and f"set_field:{ROUTER_MAC}->dl_src" in f for f in arp)
    # without BGP: the direct route, the endpoint's own MAC, no router port
    plain = _view(bgp=False)
    assert any("nw_dst=10.60.0.2," in f and "02:02:0a:3c:00:02" in f for f in _table(plain, Table.L3_FORWARDING))
    assert len(_table(plain, Table.ROUTER_PORT)) == 1  # its miss flow
    assert bgp_routes.prefixes(plain) == frozenset()


def test_local_endpoints_announced_and_routed_in() -> None:
    view = _view()
    assert bgp_routes.prefixes(view) == frozenset({"10.60.0.1/32"})
    router = _table(view, Table.ROUTER_PORT)
    route_in = next(f for f in router if "nw_dst=10.60.0.1" in f)
    assert f"dl_dst={ROUTER_PORT_MAC}" in route_in
    assert "set_field:02:02:0a:3c:00:01->dl_dst" in route_in
    assert f"goto_table:{int(Table.SRC_EPG)}" in route_in
    assert any(f"in_port={ROUTER_OFPORT}" in f and "output:2" in f for f in router)
    classifier = _table(view, Table.CLASSIFIER)
    assert any("in_port=2,vlan_tci=0x0000/0x1fff" in f for f in classifier), "untagged uplink frames"
    # a learned route that is not resolved yet is simply absent: nothing is sent to a MAC nobody owns
    unresolved = replace(view, bgp=BgpView("50.1.1.1", ROUTER_PORT_MAC, ()))
    assert not any("nw_dst=172.30.1.0/24" in f for f in _table(unresolved, Table.L3_FORWARDING))


def test_netmaster_oper_from_the_agents_answer() -> None:
    agent = {"state": "running", "announced": ["10.60.0.1/32"], "error": "",
             "neighbors": [{"address": "50.1.1.254", "asn": 500, "state": "established", "uptime": 12.0,
                            "received": 3, "accepted": 2, "advertised": 1},
                           {"address": "50.1.1.99", "asn": 500, "state": "active", "uptime": 0}],
             "routes": [{"prefix": "10.60.0.1/32", "next_hop": "50.1.1.1", "peer": "", "as_path": []}]}
    oper = bgp_oper(agent)
    assert oper["neighborStatus"] == "50.1.1.254=Established,50.1.1.99=Active"
    assert oper["adminStatus"] == "Up"
    assert oper["numRoutes"] == 1
    assert oper["routes"][0] == {"prefix": "10.60.0.1/32", "nextHop": "50.1.1.1", "peer": "", "asPath": []}
    assert oper["neighbors"][0]["prefixes"] == {"received": 3, "accepted": 2, "advertised": 1}
    agent["neighbors"] = agent["neighbors"][:1]
    assert bgp_oper(agent)["neighborStatus"] == "Established"


ECMP_ROUTES = (LearnedRoute("10.60.0.2/32", "50.1.1.253", "aa:00:00:00:00:fd"),
               LearnedRoute("10.60.0.2/32", "50.1.1.254", "aa:00:00:00:00:fe"),
               LearnedRoute("172.30.1.0/24", "50.1.1.254", "aa:00:00:00:00:fe"))


def test_a_prefix_with_two_next_hops_goes_through_a_select_group() -> None:
    view = replace(_view(), bgp=BgpView("50.1.1.1", ROUTER_PORT_MAC, ECMP_ROUTES))
    groups = bgp_routes.groups(view)
    assert len(groups) == 1
    (gid, group), = groups.items()
    assert gid >= bgp_routes.ECMP_GROUP_BASE, "clear of the service groups' ids"
    assert [b[0].value for b in group.buckets] == ["aa:00:00:00:00:fd", "aa:00:00:00:00:fe"]
    assert all(b[1].text() == "output:2" for b in group.buckets), "each bucket out of the uplink"
    l3 = _table(view, Table.L3_FORWARDING)
    ecmp = [f for f in l3 if "nw_dst=10.60.0.2," in f]
    assert len(ecmp) == 1, ecmp
    assert f"load:{gid:#x}->NXM_NX_REG10[]" in ecmp[0]
    single = next(f for f in l3 if "nw_dst=172.30.1.0/24" in f)
    assert "REG10" not in single, "one next hop: no group"
    assert "set_field:aa:00:00:00:00:fe->dl_dst" in single
    out = [f for f in _table(view, Table.OUTPUT) if f"group:{gid}" in f]
    assert len(out) == 1, out
    assert f"reg10={gid}" in out[0]
    # UDP: multipath over the 5-tuple (the group's hash leaves UDP ports out), one flow per next hop
    udp = [f for f in _table(view, Table.OUTPUT) if f"reg10={gid}" in f and "nw_proto=17" in f]
    assert any("multipath(symmetric_l3l4+udp,0,hrw,2,0,NXM_NX_REG11[0..15])" in f for f in udp), udp
    assert {f.split("set_field:")[1].split("->")[0] for f in udp if "reg11=" in f} == \
        {"aa:00:00:00:00:fd", "aa:00:00:00:00:fe"}
    # one next hop gone: its bucket with it; the prefix's plain flow back, the group unused and dropped
    one = replace(view, bgp=BgpView("50.1.1.1", ROUTER_PORT_MAC, ECMP_ROUTES[1:]))
    assert bgp_routes.groups(one) == {}
    assert not any("group:" in f for f in _table(one, Table.OUTPUT))
    # the group id belongs to the next-hop set: unchanged by other prefixes coming or going
    more = (*ECMP_ROUTES, LearnedRoute("172.30.2.0/24", "50.1.1.253", "aa:00:00:00:00:fd"),
            LearnedRoute("172.30.2.0/24", "50.1.1.254", "aa:00:00:00:00:fe"))
    assert set(bgp_routes.groups(replace(view, bgp=BgpView("50.1.1.1", ROUTER_PORT_MAC, more)))) == {gid}


def test_multipath_keeps_the_paths_as_good_as_the_best() -> None:
    """gobgpd's ranking (its Path.Compare): equal AS path length, origin, MED, local preference."""
    from google.protobuf.any_pb2 import Any as AnyMessage

    from agent.bgp.gobgp import multipath
    from agent.bgp.stubs import StubsUnavailableError, load

    try:
        api = load()
    except StubsUnavailableError as exc:
        pytest.skip(f"no gobgp stubs on this machine: {exc}")

    def path(next_hop: str, as_path: list[int], med: int = 0, best: bool = False) -> object:
        attrs = []
        for message in (api.attrs.NextHopAttribute(next_hop=next_hop), api.attrs.MultiExitDiscAttribute(med=med),
                        api.attrs.AsPathAttribute(segments=[api.attrs.AsSegment(type=2, numbers=as_path)])):
            packed = AnyMessage()
            packed.Pack(message)
            attrs.append(packed)
        return api.pb.Path(pattrs=attrs, best=best, neighbor_ip=next_hop, is_from_external=True)

    def hops(paths: list) -> list[str]:
        return [p.neighbor_ip for p in multipath(paths, api.attrs)]

    a, b = path("50.1.1.254", [500, 65002], best=True), path("50.1.1.253", [500, 65002])
    assert hops([a, b]) == ["50.1.1.254", "50.1.1.253"]
    assert hops([a, path("50.1.1.253", [500, 600, 65002])]) == ["50.1.1.254"], "a longer AS path"
    assert hops([a, path("50.1.1.253", [500, 65002], med=5)]) == ["50.1.1.254"], "a higher MED"
    assert hops([path("50.1.1.253", [500, 65002]), a]) == ["50.1.1.254", "50.1.1.253"], "the flagged best first"
    withdrawn = path("50.1.1.253", [500, 65002])
    withdrawn.is_withdraw = True
    assert hops([a, withdrawn]) == ["50.1.1.254"]
    assert hops([]) == []


def test_announce_subnets_adds_the_subnets_of_local_endpoints() -> None:
    objects = _objects()
    objects[1] = NmObject("Bgp", "h1", {**objects[1].object, "announce-subnets": "yes"})
    config = build_state(objects, {}, "h1", 1).bgp
    assert config == replace(BGP, announce_subnets=True)
    assert DesiredState.from_dict(_state(config).to_dict()).bgp == config
    view = replace(_view(), state=_state(config))
    assert bgp_routes.prefixes(view) == frozenset({"10.60.0.1/32", "10.60.0.0/24"})
    alone = replace(view, endpoint_ofports={})  # a has no port (yet): nothing local to announce
    assert bgp_routes.prefixes(alone) == frozenset(), "no local endpoint: no subnet"


def test_an_endpoint_being_added_is_announced_until_a_program_takes_it_over(tmp_path: Path) -> None:
    """``expect``: announced before the endpoint's flows; the program that has it takes it over, a failed
    add (``forget``) or the timeout drops it. (No threads: only what the converge rounds are given.)"""
    from agent.bgp import speaker as speaker_mod
    from agent.bgp.gobgpd import Gobgpd
    from agent.metrics import AgentMetrics

    speaker = speaker_mod.BgpSpeaker(Gobgpd("127.0.0.1:1", tmp_path), AgentMetrics())
    speaker._started = True  # the converge and watch threads stay off
    speaker.expect("10.60.0.9/32")
    assert speaker._wanted() == frozenset(), "no Bgp object: nothing announced"
    speaker.desire(BGP, frozenset({"10.60.0.1/32"}))
    speaker.expect("10.60.0.9/32")
    speaker.expect("10.60.0.8/32")
    assert speaker._wanted() == {"10.60.0.1/32", "10.60.0.9/32", "10.60.0.8/32"}
    speaker.desire(BGP, frozenset({"10.60.0.1/32", "10.60.0.9/32"}))  # .9's program: taken over
    speaker.forget("10.60.0.8/32")  # .8's add failed
    assert speaker._wanted() == {"10.60.0.1/32", "10.60.0.9/32"}
    speaker.desire(BGP, frozenset({"10.60.0.1/32"}))  # .9 deleted later: withdrawn, not kept as expected
    assert speaker._wanted() == {"10.60.0.1/32"}
    speaker.expect("10.60.0.7/32")
    speaker._expected["10.60.0.7/32"] -= speaker_mod.EARLY_FOR + 1  # an add that never finished
    assert speaker._wanted() == {"10.60.0.1/32"}
    # retract: a delete withdraws at once; the program without it ends that; a re-add announces again
    speaker.desire(BGP, frozenset({"10.60.0.1/32", "10.60.0.2/32"}))
    speaker.retract("10.60.0.2/32")
    speaker.retract("10.60.0.5/32")  # not announced: nothing to do
    assert speaker._wanted() == {"10.60.0.1/32"}
    speaker.expect("10.60.0.2/32")  # the same address added again before the delete's program
    assert speaker._wanted() == {"10.60.0.1/32", "10.60.0.2/32"}
    speaker.retract("10.60.0.2/32")
    speaker.desire(BGP, frozenset({"10.60.0.1/32"}))
    assert speaker._retracted == {}
    speaker.desire(BGP, frozenset({"10.60.0.1/32", "10.60.0.2/32"}))  # re-added later: announced
    assert speaker._wanted() == {"10.60.0.1/32", "10.60.0.2/32"}
