"""Host access without processes: which networks a host serves, the flows that serve them, the
iptables rules, and netmaster's objects mapped to the state (packets: tests/agent/test_host_access.py)."""

from __future__ import annotations

from dataclasses import replace

from agent.host_access import host_port_address, plan
from agent.host_kernel import iptables_rules
from agent.netmaster_state import NmObject, build_state
from agent.pipeline import build
from agent.pipeline.tables import HOST_OFPORT, ROUTER_MAC, PortType, Table
from agent.pipeline.view import DatapathView
from agent.state import DesiredState, Endpoint, Network

NET = Network("t1", "n", "vxlan", "10.30.0.0/24", vni=9330, gateway="10.30.0.254", host_access=True)
OTHER = Network("t2", "m", "vxlan", "10.31.0.0/24", vni=9332, host_access=True)


def test_address_is_contivs_last_address_of_the_private_subnet() -> None:
    assert host_port_address("172.19.0.0/16") == "172.19.255.254/16"
    assert host_port_address("10.200.0.0/16") == "10.200.255.254/16"


def test_plan_serves_switched_on_networks_and_refuses_what_one_routing_table_cannot_hold() -> None:
    off = Network("t1", "off", "vlan", "10.40.0.0/24", vlan=40)
    served = plan(DesiredState(networks=(NET, OTHER, off)))
    assert [n.key for n in served.networks] == ["t1:n", "t2:m"]
    assert (served.refused, served.address) == ({}, "172.19.255.254/16")
    assert served.subnets == ["10.30.0.0/24", "10.31.0.0/24"]

    twin = replace(OTHER, subnet="10.30.0.128/25")  # overlaps t1:n: both refused, with the reason
    clash = plan(DesiredState(networks=(NET, twin)))
    assert clash.networks == ()
    assert not clash.active
    assert "overlaps host-access network(s) t2:m of another tenant" in clash.refused["t1:n"]
    assert "overlaps host-access network(s) t1:n of another tenant" in clash.refused["t2:m"]

    inside_pvt = replace(NET, subnet="172.19.3.0/24")
    assert "overlaps the private subnet" in plan(DesiredState(networks=(inside_pvt,))).refused["t1:n"]
    assert plan(DesiredState(infra="aci", networks=(NET,))).refused == {"t1:n": "ACI mode: the fabric routes"}


def _flows(state: DesiredState, host_networks: tuple[Network, ...]) -> list[str]:
    view = DatapathView(state, "h1", {"t1": 1, "t2": 2}, {"a": 16}, True, True, host_networks=host_networks)
    return [f.ofctl() for f in build(view)]


def test_flows_send_unknown_destinations_to_the_host_after_egress_policy_and_check_what_comes_back() -> None:
    state = DesiredState(networks=(NET,), endpoints=(Endpoint("a", "t1", "n", "10.30.0.1", "h1", netns="x"),
                                                      Endpoint("b", "t1", "n", "10.30.0.2", "h2")))
    ep = state.endpoint("a")
    assert ep is not None
    flows = "\n".join(_flows(state, (NET,)))
    to_host = next(f for f in flows.splitlines() if f"load:{HOST_OFPORT:#x}->NXM_NX_REG1[]" in f)
    assert f"table={Table.L2_FORWARDING_CALC}," in to_host
    assert f"dl_dst={ROUTER_MAC}" in to_host
    assert Table.EGRESS_POLICY < Table.L2_FORWARDING_CALC  # an out rule judges the packet first
    assert f"table={Table.HOST_IN},priority=200,dl_type=0x800,nw_src=10.30.0.0/24 actions=drop" in flows
    assert f"nw_dst=10.30.0.1 actions=set_field:{ROUTER_MAC}->dl_src,set_field:{ep.mac}->dl_dst" in flows
    assert "nw_dst=10.30.0.2" not in "\n".join(f for f in flows.splitlines() if f"table={Table.HOST_IN}," in f), \
        "a remote endpoint is its own host's to serve"
    assert f"dl_type=0x800,in_port={HOST_OFPORT} actions=load:0x2->NXM_NX_REG0[],goto_table:{Table.HOST_IN}" in flows
    assert f"arp_tpa=10.30.0.1,dl_type=0x806,reg0={int(PortType.HOST)}" in flows  # the host's ARP, answered
    # bridge fwdMode: the gateway is answered with the router MAC only for a host-access network
    assert "arp_tpa=10.30.0.254" in flows
    assert "arp_tpa=10.30.0.254" not in "\n".join(_flows(state, ()))
    assert f"load:{HOST_OFPORT:#x}" not in "\n".join(_flows(state, ())), "no port, no host flows"


def test_iptables_rules_are_the_agents_own_chains() -> None:
    text = iptables_rules(["10.30.0.0/24"])
    assert text.splitlines() == [
        "*nat", ":CONTIV-HOST-SNAT - [0:0]", "-A CONTIV-HOST-SNAT -s 10.30.0.0/24 ! -o contivh0 -j MASQUERADE",
        "COMMIT", "*filter", ":CONTIV-HOST-FWD - [0:0]", "-A CONTIV-HOST-FWD -i contivh0 -j ACCEPT",
        "-A CONTIV-HOST-FWD -o contivh0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
        "-A CONTIV-HOST-FWD -o contivh0 -j DROP", "COMMIT"]


def test_netmaster_status_decides_host_access() -> None:
    def net(name: str, subnet: str, **status: str) -> NmObject:
        return NmObject("network", f"t:{name}", {"tenantName": "t", "networkName": name, "encap": "vxlan",
                                                 "subnet": subnet}, {"pktTag": 1, "externalPktTag": 7, **status})

    state = build_state([NmObject("global", "global", {"pvtSubnet": "172.20.0.0/16"}),
                         net("on", "10.1.0.0/24", hostAccess="enabled"),
                         net("off", "10.2.0.0/24", hostAccess="disabled"),
                         net("no", "10.3.0.0/24", hostAccess="refused: overlaps"), net("old", "10.4.0.0/24")],
                        {}, "h1", 1)
    assert {n.name: n.host_access for n in state.networks} == {"on": True, "off": False, "no": False, "old": True}
    assert state.pvt_subnet == "172.20.0.0/16"


def test_with_dns_too_the_gateway_has_one_answer_and_no_two_flows_share_a_match() -> None:
    """Host access and service discovery both answer a VXLAN bridge network's gateway: one flow per
    (table, priority, match), or the switch would keep whichever came last. The router MAC wins (the
    DNS redirect matches port 53 whatever the MAC; the way out needs the router MAC)."""
    state = DesiredState(networks=(NET,), endpoints=(Endpoint("a", "t1", "n", "10.30.0.1", "h1", netns="x"),))
    view = DatapathView(state, "h1", {"t1": 1}, {"a": 16}, True, True, dns_ofport=14, host_networks=(NET,))
    flows = list(build(view))
    keys = [f.key for f in flows]
    assert len(keys) == len(set(keys)), sorted(k for k in keys if keys.count(k) > 1)
    answers = [f.ofctl() for f in flows if f.table == Table.ARP_RESPONDER and "arp_tpa=10.30.0.254" in f.ofctl()]
    assert len(answers) == 1, answers
    assert ROUTER_MAC in answers[0], answers
