"""L2 forwarding: destination MAC within the packet's network -> output port.

Known endpoints: local ones get their ofport; remote ones on a VXLAN network get the tunnel port with
the network's VNI and the peer's VTEP as tunnel destination; remote ones on a VLAN network get the
uplink (the output stage adds the tag). The chosen port goes to a register so the packet can still pass
ingress policy and the conntrack commit before it leaves.

Broadcast and unknown destinations are flooded within the network: to its local ports, and, when the
packet came from a local endpoint, once to every peer VTEP that has endpoints in the network
(head-end replication) or tagged to the uplink. Packets from the tunnel or uplink are flooded
locally only, which prevents loops. Networks never see each other's traffic: every flow matches the
network register.

ACI mode (segments are EPGs, see view.py): a frame from one EPG to an endpoint of another EPG of the
same network is never delivered on the host, even when both are local: it goes up the uplink with the
sender's EPG VLAN and the leaf, if a contract allows it, sends it back down with the receiver's.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache

from agent.ovs.flow import Action, Feature, Flow, Match, Output, PushVlan, SetField
from agent.pipeline.flow_cache import FLOW_CACHE_SIZE
from agent.pipeline.tables import (
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


def _to_port(net: Network, mac: str, port: int, port_type: PortType, extra: tuple[Action, ...] = ()) -> Flow:
    return Flow(Table.L2_FORWARDING, PRIO_NORMAL, Match.of(reg4=net.segment, eth_dst=mac),
                (*extra, SetField(Reg.OUT_PORT, port), SetField(Reg.DST_TYPE, int(port_type))),
                goto=Table.INGRESS_POLICY, feature=Feature.L2_FORWARDING)


@lru_cache(maxsize=FLOW_CACHE_SIZE)
def local_flow(mac: str, ofport: int, net: Network) -> Flow:
    return _to_port(net, mac, ofport, PortType.LOCAL)


@lru_cache(maxsize=FLOW_CACHE_SIZE)
def remote_flow(ep: Endpoint, net: Network, vtep: str, uplink: int = UPLINK_OFPORT) -> Flow:
    if net.encap == "vxlan":
        tunnel = (SetField("tunnel_id", net.vni), SetField("tun_ipv4_dst", vtep))
        return _to_port(net, ep.mac, TUNNEL_OFPORT, PortType.TUNNEL, tunnel)
    return _to_port(net, ep.mac, uplink, PortType.UPLINK)  # the output stage picks a bond's member


@lru_cache(maxsize=FLOW_CACHE_SIZE)
def via_fabric_flow(mac: str, segment: Network, uplink: int = UPLINK_OFPORT) -> Flow:
    """ACI mode: to *mac*, an endpoint of another EPG, from *segment*: up to the fabric."""
    return _to_port(segment, mac, uplink, PortType.UPLINK)  # the output stage picks a bond's member


def _remote_copies(view: DatapathView, net: Network) -> list[Action]:
    if net.encap == "vxlan":
        if not view.has_tunnel:
            return []
        out: list[Action] = [SetField("tunnel_id", net.vni)]
        for vtep in view.peer_vteps_of(net):
            out += [SetField("tun_ipv4_dst", vtep), Output(TUNNEL_OFPORT)]
        return out if len(out) > 1 else []
    if not view.has_uplink:
        return []
    return [PushVlan(), SetField("vlan_vid", OFPVID_PRESENT | net.vlan), view.uplink_output()]


def flood_flows(view: DatapathView, net: Network) -> Iterator[Flow]:
    local = tuple(Output(p) for p in view.local_ports_of(net))
    from_local = (*local, *_remote_copies(view, net))
    if from_local:
        yield Flow(Table.L2_FORWARDING, PRIO_LOW + 1, Match.of(reg4=net.segment, reg0=int(PortType.LOCAL)),
                   from_local, feature=Feature.L2_FORWARDING)
    if local:
        yield Flow(Table.L2_FORWARDING, PRIO_LOW, Match.of(reg4=net.segment), local,
                   feature=Feature.L2_FORWARDING)


def flows(view: DatapathView) -> Iterator[Flow]:
    for ep, ofport in view.local_endpoints:
        yield local_flow(ep.mac, ofport, view.network_of(ep))
    for ep in view.remote_endpoints:
        yield remote_flow(ep, view.network_of(ep), view.vtep_of(ep), view.uplink_ports[0])
    if view.aci and view.has_uplink:
        for ep in view.all_endpoints():
            for seg in view.other_epg_segments(ep):
                yield via_fabric_flow(ep.mac, seg, view.uplink_ports[0])
    for net in view.networks:
        yield from flood_flows(view, net)
    yield Flow(Table.L2_FORWARDING, PRIO_MISS, Match())
