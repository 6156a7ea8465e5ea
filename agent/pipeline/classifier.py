"""Classifier stage: where did the packet come from?

Sorts packets by ingress port type (local endpoint, VXLAN tunnel, VLAN uplink) and loads the
registers every later stage relies on: source type, network segment, tenant (VRF) and, for local
endpoints, the source EPG. Packets from the tunnel or the uplink learn their source EPG from their
source address in SRC_EPG, since the wire does not carry it.
"""

from __future__ import annotations

from collections.abc import Iterator

from agent.ovs.flow import Feature, Flow, Match, PopVlan, SetField
from agent.pipeline.tables import (
    ETH_ARP,
    ETH_IP,
    OFPVID_PRESENT,
    PRIO_LOW,
    PRIO_MISS,
    PRIO_NORMAL,
    TUNNEL_OFPORT,
    UPLINK_OFPORT,
    PortType,
    Reg,
    Table,
)
from agent.pipeline.view import DatapathView
from agent.state import Endpoint, Network


def _load(src_type: PortType, net: Network, vrf: int, epg: int | None = None) -> tuple[SetField, ...]:
    loads = [SetField(Reg.SRC_TYPE, int(src_type)), SetField(Reg.NETWORK, net.segment),
             SetField(Reg.TENANT, vrf)]
    if epg is not None:
        loads.append(SetField(Reg.SRC_EPG, epg))
    return tuple(loads)


def local_port_flow(view: DatapathView, ep: Endpoint, ofport: int) -> Flow:
    net = view.network_of(ep)
    return Flow(Table.CLASSIFIER, PRIO_NORMAL, Match.of(in_port=ofport),
                _load(PortType.LOCAL, net, view.vrf(ep.tenant), view.epg(ep)), goto=Table.SPOOF_GUARD,
                feature=Feature.CLASSIFIER)


def tunnel_flow(view: DatapathView, net: Network) -> Flow:
    return Flow(Table.CLASSIFIER, PRIO_NORMAL, Match.of(in_port=TUNNEL_OFPORT, tunnel_id=net.vni),
                _load(PortType.TUNNEL, net, view.vrf(net.tenant)), goto=Table.SRC_EPG,
                feature=Feature.CLASSIFIER)


def uplink_flow(view: DatapathView, net: Network) -> Flow:
    return Flow(Table.CLASSIFIER, PRIO_NORMAL,
                Match.of(in_port=UPLINK_OFPORT, vlan_vid=OFPVID_PRESENT | net.vlan),
                (PopVlan(), *_load(PortType.UPLINK, net, view.vrf(net.tenant))), goto=Table.SRC_EPG,
                feature=Feature.CLASSIFIER)


def remote_source_epg_flow(view: DatapathView, ep: Endpoint) -> Flow:
    return Flow(Table.SRC_EPG, PRIO_NORMAL,
                Match.of(eth_type=ETH_IP, ipv4_src=ep.ip, reg5=view.vrf(ep.tenant)),
                (SetField(Reg.SRC_EPG, view.epg(ep)),), goto=Table.CT_ZONE, feature=Feature.EPG)


def flows(view: DatapathView) -> Iterator[Flow]:
    for ep, ofport in view.local_endpoints:
        yield local_port_flow(view, ep, ofport)
    for net in view.networks:
        if net.encap == "vxlan" and view.has_tunnel:
            yield tunnel_flow(view, net)
        if net.encap == "vlan" and view.has_uplink:
            yield uplink_flow(view, net)
    for ep in view.remote_endpoints:
        if view.epg(ep):
            yield remote_source_epg_flow(view, ep)
    yield Flow(Table.CLASSIFIER, PRIO_MISS, Match())
    yield Flow(Table.SRC_EPG, PRIO_LOW, Match.of(eth_type=ETH_IP), goto=Table.CT_ZONE)
    yield Flow(Table.SRC_EPG, PRIO_LOW, Match.of(eth_type=ETH_ARP), goto=Table.ARP_RESPONDER)
    yield Flow(Table.SRC_EPG, PRIO_MISS, Match())
