"""L3 mode without processes: the Bgp object into the desired state, the pipeline's BGP flows, and
netmaster's inspect fields from the agent's answer."""

from __future__ import annotations

from dataclasses import replace

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
