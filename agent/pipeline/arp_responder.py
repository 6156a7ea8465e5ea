"""ARP responder: ARP requests from local endpoints are answered by flows, never by packet-in.

Global ``arpMode`` ``proxy`` (the default) answers as below. ``flood`` answers no endpoint: every
request goes on to L2 forwarding, which floods ARP within the segment (local ports, peer VTEPs, the
uplink), and the target endpoint answers itself; only the routing fwdMode gateway, which no endpoint
owns, is still answered with the router MAC. Switching mode only adds or removes the answer flows, so
established traffic (IPv4, already resolved) is untouched.

Every known endpoint of the requester's network (local or remote) is answered with its MAC, and in
routing fwdMode, or on a host-access network in either fwdMode, the network's gateway with the router
MAC. The host port's requests for a local endpoint of a host-access network are answered with the
endpoint's MAC (``host_reply_flow``, owned by host access). Because the answers live in the switch, a
stopped agent does not stop address resolution. Requests for unknown addresses, replies, and ARP
arriving from the tunnel or uplink continue to L2 forwarding, so an endpoint still answers for itself.

ACI mode: the requester's segment is its EPG, so only endpoints of the same EPG are answered; requests
for other EPGs' endpoints and for the bridge domain's gateway go to the fabric (the leaf's pervasive
gateway answers for the gateway). An endpoint's request for its own address (a gratuitous ARP, which
the agent sends for every endpoint so the leaf learns it) is not answered either but flooded, so it
reaches the fabric.

L3 mode (BGP): a remote endpoint of a VLAN network is answered with the router MAC, so traffic to it
is routed through the learned routes (``bgp_routes.via_bgp``) rather than bridged on the trunk, in
both ARP modes.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache

from agent.ovs.flow import OFPP_IN_PORT, Action, Feature, Flow, Match, Move, Output, SetField
from agent.pipeline.bgp_routes import via_bgp
from agent.pipeline.flow_cache import FLOW_CACHE_SIZE
from agent.pipeline.tables import ETH_ARP, PRIO_HIGH, PRIO_MISS, PRIO_NORMAL, ROUTER_MAC, PortType, Table
from agent.pipeline.view import DatapathView
from agent.state import Network


def _reply(ip: str, mac: str) -> tuple[Action, ...]:
    """Turn a request for *ip* into the reply "ip is at mac" and send it back where it came from."""
    return (
        Move("eth_src", "eth_dst", 48),
        SetField("eth_src", mac),
        SetField("arp_op", 2),
        Move("arp_sha", "arp_tha", 48),
        SetField("arp_sha", mac),
        Move("arp_spa", "arp_tpa", 32),
        SetField("arp_spa", ip),
        Output(OFPP_IN_PORT),
    )


@lru_cache(maxsize=FLOW_CACHE_SIZE)
def reply_flow(net: Network, ip: str, mac: str) -> Flow:
    """A local endpoint of *net* asks for *ip*: answered with *mac*."""
    match = Match.of(eth_type=ETH_ARP, arp_op=1, arp_tpa=ip, reg0=int(PortType.LOCAL), reg4=net.segment)
    return Flow(Table.ARP_RESPONDER, PRIO_NORMAL, match, _reply(ip, mac), feature=Feature.ARP_RESPONDER)


@lru_cache(maxsize=FLOW_CACHE_SIZE)
def host_reply_flow(ip: str, mac: str) -> Flow:
    """The host (its host-access port) asks for a local endpoint's *ip*: answered with its *mac*, so
    the host needs no static neighbour entries and resolution works while the agent is down."""
    match = Match.of(eth_type=ETH_ARP, arp_op=1, arp_tpa=ip, reg0=int(PortType.HOST))
    return Flow(Table.ARP_RESPONDER, PRIO_NORMAL, match, _reply(ip, mac), feature=Feature.HOST_ACCESS)


@lru_cache(maxsize=FLOW_CACHE_SIZE)
def own_address_flow(ofport: int, ip: str) -> Flow:
    """A request from *ofport* for its own *ip* (gratuitous ARP) goes on to L2 forwarding unanswered."""
    match = Match.of(eth_type=ETH_ARP, arp_op=1, arp_tpa=ip, in_port=ofport)
    return Flow(Table.ARP_RESPONDER, PRIO_HIGH, match, goto=Table.L2_FORWARDING_CALC, feature=Feature.ARP_RESPONDER)


def flows(view: DatapathView) -> Iterator[Flow]:
    if view.aci:
        for ep, ofport in view.local_endpoints:
            yield own_address_flow(ofport, ep.ip)
    for ep in view.all_endpoints():
        if via_bgp(view, ep):  # in both ARP modes: the route is the only way there
            yield reply_flow(view.network_of(ep), ep.ip, ROUTER_MAC)
        elif view.state.arp_mode == "proxy":
            yield reply_flow(view.network_of(ep), ep.ip, ep.mac)
    for net in view.networks:  # the gateway of a routed or host-access network is the switch's router
        if net.gateway and (view.routing or view.host_access(net)):
            yield reply_flow(net, net.gateway, ROUTER_MAC)
    yield Flow(Table.ARP_RESPONDER, PRIO_MISS, Match(), goto=Table.L2_FORWARDING_CALC)
