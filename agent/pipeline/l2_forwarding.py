"""L2 forwarding (Antrea's L2ForwardingCalc): decide where a frame goes; the output stage sends it.

The decision is written to registers and the packet goes on through ingress policy and the conntrack
commit, so no frame reaches an endpoint port without passing them:

- IPv4 to a known endpoint of the packet's segment, by destination MAC *and* IP: its ofport (local;
  the receiver's EPG is loaded into the destination EPG register, so ingress policy judges the
  endpoint that will really get the frame), the tunnel with the segment's VNI and the peer's VTEP, or
  the uplink (the output stage adds the VLAN tag). Matching the IP too keeps both policies honest: a
  frame to one endpoint's MAC carrying another's IP (judged by egress policy as traffic to the other)
  is not delivered to the first;
- ARP: flood within the segment (the output stage replicates it: local ports, plus from a local
  endpoint one copy per peer VTEP or the tagged uplink). Requests for known endpoints never get here
  (the ARP responder answers them), so what floods is replies, gratuitous ARPs and requests for
  addresses outside the cluster;
- IPv4 with any other destination (broadcast, multicast or unknown MAC, a gateway outside the host,
  an endpoint's MAC with another IP): never to an endpoint port. From a local endpoint on a VLAN
  segment it goes to the uplink only (a router or host outside the cluster may own the MAC; the
  sender's egress policy has passed); all else is dropped. Linux accepts unicast IP inside a
  broadcast frame, so flooding IP to endpoint ports would let any container reach a group whose
  ingress policy denies it (docs/pipeline.md, "Floods").

ACI mode (segments are EPGs, see view.py): a frame from one EPG to an endpoint of another EPG of the
same network is never delivered on the host, even when both are local: it goes up the uplink with the
sender's EPG VLAN and the leaf, if a contract allows it, sends it back down with the receiver's.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache

from agent.ovs.flow import Action, Feature, Flow, Match, SetField
from agent.pipeline.flow_cache import FLOW_CACHE_SIZE
from agent.pipeline.tables import (
    ETH_ARP,
    ETH_IP,
    PRIO_LOW,
    PRIO_MISS,
    PRIO_NORMAL,
    TUNNEL_OFPORT,
    UPLINK_OFPORT,
    PortType,
    Reg,
    Table,
    next_table,
)
from agent.pipeline.view import DatapathView
from agent.state import Endpoint, Network

_TABLE = Table.L2_FORWARDING_CALC


def decide(match: Match, port: int, port_type: PortType, extra: tuple[Action, ...] = (),
           priority: int = PRIO_NORMAL, feature: Feature = Feature.L2_FORWARDING) -> Flow:
    """One decision: output port and its type in registers, then on (ingress policy comes next).
    Other features (host access) decide their destinations here too, with their own cookie."""
    return Flow(_TABLE, priority, match,
                (*extra, SetField(Reg.OUT_PORT, port), SetField(Reg.DST_TYPE, int(port_type))),
                goto=next_table(_TABLE), feature=feature)


def _to_endpoint(net: Network, ep: Endpoint) -> Match:
    return Match.of(reg4=net.segment, eth_type=ETH_IP, eth_dst=ep.mac, ipv4_dst=ep.ip)


@lru_cache(maxsize=FLOW_CACHE_SIZE)
def local_flow(ep: Endpoint, ofport: int, net: Network, epg: int) -> Flow:
    """To a local endpoint: its port, and its EPG for ingress policy."""
    return decide(_to_endpoint(net, ep), ofport, PortType.LOCAL, (SetField(Reg.DST_EPG, epg),))


@lru_cache(maxsize=FLOW_CACHE_SIZE)
def remote_flow(ep: Endpoint, net: Network, vtep: str, uplink: int = UPLINK_OFPORT) -> Flow:
    match = _to_endpoint(net, ep)
    if net.encap == "vxlan":
        tunnel = (SetField("tunnel_id", net.vni), SetField("tun_ipv4_dst", vtep))
        return decide(match, TUNNEL_OFPORT, PortType.TUNNEL, tunnel)
    return decide(match, uplink, PortType.UPLINK)  # the output stage picks a bond's member


@lru_cache(maxsize=FLOW_CACHE_SIZE)
def via_fabric_flow(mac: str, segment: Network, uplink: int = UPLINK_OFPORT) -> Flow:
    """ACI mode: to *mac*, an endpoint of another EPG, from *segment*: up to the fabric."""
    return decide(Match.of(reg4=segment.segment, eth_dst=mac), uplink, PortType.UPLINK)


def arp_flood_flow(net: Network) -> Flow:
    """ARP, whatever its destination MAC: flood (ACI: ARP to another EPG's endpoint goes to the fabric,
    by MAC, at a higher priority)."""
    return decide(Match.of(reg4=net.segment, eth_type=ETH_ARP), 0, PortType.FLOOD, priority=PRIO_LOW)


def ip_to_uplink_flow(net: Network, uplink: int) -> Flow:
    """IPv4 from a local endpoint to a MAC no endpoint owns, on a VLAN segment: the uplink only."""
    return decide(Match.of(reg4=net.segment, reg0=int(PortType.LOCAL), eth_type=ETH_IP), uplink, PortType.UPLINK,
                   priority=PRIO_LOW)


def flows(view: DatapathView) -> Iterator[Flow]:
    for ep, ofport in view.local_endpoints:
        yield local_flow(ep, ofport, view.network_of(ep), view.epg(ep))
    for ep in view.remote_endpoints:
        yield remote_flow(ep, view.network_of(ep), view.vtep_of(ep), view.uplink_ports[0])
    if view.aci and view.has_uplink:
        for ep in view.all_endpoints():
            for seg in view.other_epg_segments(ep):
                yield via_fabric_flow(ep.mac, seg, view.uplink_ports[0])
    for net in view.networks:
        yield arp_flood_flow(net)
        if net.encap == "vlan" and view.has_uplink:
            yield ip_to_uplink_flow(net, view.uplink_ports[0])
    yield Flow(_TABLE, PRIO_MISS, Match())  # IPv4 to a broadcast, multicast or unknown MAC: dropped
