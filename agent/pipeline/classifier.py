"""Classifier stage: where did the packet come from?

Sorts packets by ingress port type (local endpoint, VXLAN tunnel, VLAN uplink) and loads the
registers every later stage relies on: source type, network segment, tenant (VRF) and, for local
endpoints, the source EPG. A bonded uplink (several ``--vlan-uplinks``) first passes the UPLINK
table, which admits packets on the bond's active member only. Packets from the tunnel or the uplink
learn their source EPG from their source address in SRC_EPG, since the wire does not carry it.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache

from agent.ovs.flow import Bundle, Feature, Flow, Match, PopVlan, SetField
from agent.pipeline.flow_cache import FLOW_CACHE_SIZE
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
from agent.state import Network


def _load(src_type: PortType, net: Network, vrf: int, epg: int | None = None) -> tuple[SetField, ...]:
    loads = [SetField(Reg.SRC_TYPE, int(src_type)), SetField(Reg.NETWORK, net.segment),
             SetField(Reg.TENANT, vrf)]
    if epg is not None:
        loads.append(SetField(Reg.SRC_EPG, epg))
    return tuple(loads)


@lru_cache(maxsize=FLOW_CACHE_SIZE)
def local_port_flow(ofport: int, net: Network, vrf: int, epg: int) -> Flow:
    return Flow(Table.CLASSIFIER, PRIO_NORMAL, Match.of(in_port=ofport),
                _load(PortType.LOCAL, net, vrf, epg), goto=Table.SPOOF_GUARD, feature=Feature.CLASSIFIER)


@lru_cache(maxsize=FLOW_CACHE_SIZE)
def tunnel_flow(net: Network, vrf: int) -> Flow:
    return Flow(Table.CLASSIFIER, PRIO_NORMAL, Match.of(in_port=TUNNEL_OFPORT, tunnel_id=net.vni),
                _load(PortType.TUNNEL, net, vrf), goto=Table.SRC_EPG, feature=Feature.CLASSIFIER)


@lru_cache(maxsize=FLOW_CACHE_SIZE)
def uplink_flow(net: Network, vrf: int) -> Flow:
    return Flow(Table.CLASSIFIER, PRIO_NORMAL,
                Match.of(in_port=UPLINK_OFPORT, vlan_vid=OFPVID_PRESENT | net.vlan),
                (PopVlan(), *_load(PortType.UPLINK, net, vrf)), goto=Table.SRC_EPG,
                feature=Feature.CLASSIFIER)


@lru_cache(maxsize=FLOW_CACHE_SIZE)
def bond_member_flow(member: int, members: tuple[int, ...]) -> Flow:
    """A bond member's packets learn which member is active and go to the admission table."""
    return Flow(Table.CLASSIFIER, PRIO_NORMAL, Match.of(in_port=member),
                (Bundle(members, dst=Reg.BOND_ACTIVE),), goto=Table.UPLINK, feature=Feature.CLASSIFIER)


@lru_cache(maxsize=FLOW_CACHE_SIZE)
def bond_admit_flow(member: int, net: Network, vrf: int) -> Flow:
    """Admit a VLAN network's packets on the active member only. The backup member of an
    active-backup bond still receives the underlay switch's floods (and this host's own broadcasts
    reflected back): taking those too would duplicate packets and could loop unknown unicast."""
    return Flow(Table.UPLINK, PRIO_NORMAL,
                Match.of(in_port=member, vlan_vid=OFPVID_PRESENT | net.vlan, **{Reg.BOND_ACTIVE: member}),
                (PopVlan(), *_load(PortType.UPLINK, net, vrf)), goto=Table.SRC_EPG, feature=Feature.CLASSIFIER)


def _uplink_flows(view: DatapathView) -> Iterator[Flow]:
    vlan_nets = [net for net in view.networks if net.encap == "vlan"]
    if not view.has_uplink:
        return
    if not view.bonded:
        for net in vlan_nets:
            yield uplink_flow(net, view.vrf(net.tenant))
        return
    for member in view.uplink_ports:
        yield bond_member_flow(member, view.uplink_ports)
        for net in vlan_nets:
            yield bond_admit_flow(member, net, view.vrf(net.tenant))


@lru_cache(maxsize=FLOW_CACHE_SIZE)
def remote_source_epg_flow(ip: str, vrf: int, epg: int) -> Flow:
    return Flow(Table.SRC_EPG, PRIO_NORMAL, Match.of(eth_type=ETH_IP, ipv4_src=ip, reg5=vrf),
                (SetField(Reg.SRC_EPG, epg),), goto=Table.CT_ZONE, feature=Feature.EPG)


def flows(view: DatapathView) -> Iterator[Flow]:
    for ep, ofport in view.local_endpoints:
        yield local_port_flow(ofport, view.network_of(ep), view.vrf(ep.tenant), view.epg(ep))
    for net in view.networks:
        if net.encap == "vxlan" and view.has_tunnel:
            yield tunnel_flow(net, view.vrf(net.tenant))
    yield from _uplink_flows(view)
    for ep in () if view.aci else view.remote_endpoints:  # ACI: no local policy needs the source EPG
        if view.epg(ep):
            yield remote_source_epg_flow(ep.ip, view.vrf(ep.tenant), view.epg(ep))
    yield Flow(Table.CLASSIFIER, PRIO_MISS, Match())
    yield Flow(Table.UPLINK, PRIO_MISS, Match())  # a backup member's packets, unknown VLANs
    yield Flow(Table.SRC_EPG, PRIO_LOW, Match.of(eth_type=ETH_IP), goto=Table.CT_ZONE)
    yield Flow(Table.SRC_EPG, PRIO_LOW, Match.of(eth_type=ETH_ARP), goto=Table.ARP_RESPONDER)
    yield Flow(Table.SRC_EPG, PRIO_MISS, Match())
