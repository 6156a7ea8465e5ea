"""L3 mode (BGP): the router port, routed frames from the uplink, and routes learned from peers.

A host with a ``Bgp`` object (routing fwdMode) has a router port (``inb01``, an OVS internal port
holding the router IP, as in Contiv) through which its BGP speaker peers with the ToR on the uplink
segment, untagged. Every local endpoint of a VLAN network is announced as a /32 with the router IP as
next hop; the routes the speaker learns (other hosts' endpoints, external prefixes) become flows.

- CLASSIFIER: the router port's frames, and untagged frames from the uplink (the VLAN networks'
  frames are tagged), go to ROUTER_PORT.
- ROUTER_PORT: the router port's frames go out of the uplink untagged; ARP from the uplink goes to the
  router port; an IPv4 frame to the router port's MAC for an announced endpoint is routed in (router
  MAC as source, the endpoint's MAC, ``dec_ttl``, its segment and tenant loaded) and continues at
  SRC_EPG like any frame from the uplink, so conntrack and the receiver's ingress policy apply; other
  frames to the router port's MAC (the BGP session, pings) go to the router port; the rest is dropped.
- L3_FORWARDING: a frame from a local endpoint to the router MAC whose destination falls in a learned
  prefix (longest prefix first: priority grows with the prefix length, all below the exact routes to
  known endpoints) gets the router port's MAC as source, the next hop's MAC, ``dec_ttl`` and the
  routed segment (reg4 = 0); L2 forwarding sends that segment to the uplink and OUTPUT sends it
  untagged.

Remote endpoints of VLAN networks are then reached only through learned routes: L3 forwarding
installs no direct route to them and the ARP responder answers them with the router MAC
(:func:`via_bgp`), so a peer that goes away takes the path with it (Contiv's vlrouter did the same).
Routes are not per tenant: the speaker has one table, like Contiv's.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from functools import lru_cache

from agent.ovs.flow import Action, DecTtl, Feature, Flow, Match, Output, SetField
from agent.pipeline.flow_cache import FLOW_CACHE_SIZE
from agent.pipeline.tables import (
    ETH_ARP,
    ETH_IP,
    PRIO_HIGH,
    PRIO_LOW,
    PRIO_NORMAL,
    ROUTED_SEGMENT,
    ROUTER_MAC,
    ROUTER_OFPORT,
    PortType,
    Reg,
    Table,
    next_table,
)
from agent.pipeline.view import BgpView, DatapathView, LearnedRoute
from agent.state import Endpoint, Network

_TABLE = Table.ROUTER_PORT
_FEATURE = Feature.BGP
_UNTAGGED = 0  # vlan_vid match: no 802.1Q header


def via_bgp(view: DatapathView, ep: Endpoint) -> bool:
    """A remote endpoint of a VLAN network, on a host with BGP: reached through a learned route only."""
    return view.bgp is not None and ep.host != view.host and view.network_of(ep).encap == "vlan"


def announced(view: DatapathView) -> list[tuple[Endpoint, int]]:
    """The local endpoints this host announces (VLAN networks), with their ofports."""
    if view.bgp is None:
        return []
    return [(ep, port) for ep, port in view.local_endpoints if view.network_of(ep).encap == "vlan"]


def prefixes(view: DatapathView) -> frozenset[str]:
    """What the speaker should announce: each announced endpoint as a /32."""
    return frozenset(f"{ep.ip}/32" for ep, _ in announced(view))


@lru_cache(maxsize=FLOW_CACHE_SIZE)
def route_in_flow(ep: Endpoint, net: Network, vrf: int, router_mac: str) -> Flow:
    """A frame the ToR routed to this host for local endpoint *ep*: deliver it like an uplink frame."""
    return Flow(_TABLE, PRIO_NORMAL, Match.of(eth_type=ETH_IP, eth_dst=router_mac, ipv4_dst=ep.ip),
                (SetField("eth_src", ROUTER_MAC), SetField("eth_dst", ep.mac), DecTtl(),
                 SetField(Reg.SRC_TYPE, int(PortType.UPLINK)), SetField(Reg.NETWORK, net.segment),
                 SetField(Reg.TENANT, vrf), SetField(Reg.SRC_EPG, 0)),
                goto=Table.SRC_EPG, feature=_FEATURE)


@lru_cache(maxsize=FLOW_CACHE_SIZE)
def learned_route_flow(route: LearnedRoute, router_mac: str) -> Flow:
    net = ipaddress.IPv4Network(route.prefix)
    dst = str(net.network_address) if net.prefixlen == 32 else str(net)
    return Flow(Table.L3_FORWARDING, PRIO_LOW + 1 + net.prefixlen,
                Match.of(eth_type=ETH_IP, eth_dst=ROUTER_MAC, ipv4_dst=dst, reg0=int(PortType.LOCAL)),
                (SetField("eth_src", router_mac), SetField("eth_dst", route.next_hop_mac), DecTtl(),
                 SetField(Reg.NETWORK, ROUTED_SEGMENT)),
                goto=next_table(Table.L3_FORWARDING), feature=_FEATURE)


def _port_flows(view: DatapathView, bgp: BgpView, to_uplink: Action) -> Iterator[Flow]:
    for uplink in view.uplink_ports:
        yield Flow(Table.CLASSIFIER, PRIO_HIGH, Match.of(in_port=uplink, vlan_vid=_UNTAGGED), goto=_TABLE,
                   feature=_FEATURE)
    yield Flow(Table.CLASSIFIER, PRIO_NORMAL, Match.of(in_port=ROUTER_OFPORT), goto=_TABLE, feature=_FEATURE)
    yield Flow(_TABLE, PRIO_HIGH, Match.of(in_port=ROUTER_OFPORT), (to_uplink,), feature=_FEATURE)
    yield Flow(_TABLE, PRIO_NORMAL, Match.of(eth_type=ETH_ARP), (Output(ROUTER_OFPORT),), feature=_FEATURE)
    yield Flow(_TABLE, PRIO_LOW, Match.of(eth_dst=bgp.router_mac), (Output(ROUTER_OFPORT),), feature=_FEATURE)


def flows(view: DatapathView) -> Iterator[Flow]:
    bgp = view.bgp
    if bgp is not None and view.has_uplink:
        to_uplink = view.uplink_output()
        yield from _port_flows(view, bgp, to_uplink)
        for ep, _ in announced(view):
            yield route_in_flow(ep, view.network_of(ep), view.vrf(ep.tenant), bgp.router_mac)
        for route in bgp.routes:
            yield learned_route_flow(route, bgp.router_mac)
        yield Flow(Table.L2_FORWARDING_CALC, PRIO_NORMAL, Match.of(reg4=ROUTED_SEGMENT, eth_type=ETH_IP),
                   (SetField(Reg.OUT_PORT, view.uplink_ports[0]), SetField(Reg.DST_TYPE, int(PortType.UPLINK))),
                   goto=next_table(Table.L2_FORWARDING_CALC), feature=_FEATURE)
        yield Flow(Table.OUTPUT, PRIO_NORMAL, Match.of(reg6=int(PortType.UPLINK), reg4=ROUTED_SEGMENT),
                   (to_uplink,), feature=_FEATURE)
    yield Flow(_TABLE, 0, Match())  # nothing else comes here; dropped
