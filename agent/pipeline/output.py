"""Output stage: the only stage that sends, to where L2 forwarding decided.

- a port in the register: ``output:reg1`` (one flow serves every endpoint and the tunnel);
- the VLAN uplink: tagged with the segment's VLAN first (the trunk carries every VLAN network), to
  the uplink port or, with a bond, its first live member (``bundle`` action);
- a flood (ARP only, L2 forwarding floods nothing else): to the segment's local ports and, when the
  packet came from a local endpoint, one copy per peer VTEP with endpoints in the segment (head-end
  replication) or one tagged copy to the uplink. Packets from the tunnel or uplink are flooded to local
  ports only, which prevents loops. The flood flows match ARP themselves, so even a wrong decision
  upstream cannot flood IPv4 to endpoint ports.
"""

from __future__ import annotations

from collections.abc import Iterator

from agent.ovs.flow import Action, Feature, Flow, Match, Output, OutputReg, PushVlan, SetField
from agent.pipeline.tables import (
    ETH_ARP,
    OFPVID_PRESENT,
    PRIO_LOW,
    PRIO_MISS,
    PRIO_NORMAL,
    TUNNEL_OFPORT,
    PortType,
    Reg,
    Table,
)
from agent.pipeline.view import DatapathView
from agent.state import Network


def uplink_flow(net: Network, out: Action) -> Flow:
    return Flow(Table.OUTPUT, PRIO_NORMAL, Match.of(reg6=int(PortType.UPLINK), reg4=net.segment),
                (PushVlan(), SetField("vlan_vid", OFPVID_PRESENT | net.vlan), out), feature=Feature.OUTPUT)


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
    arp_flood = {"reg6": int(PortType.FLOOD), "reg4": net.segment, "eth_type": ETH_ARP}
    if from_local:
        yield Flow(Table.OUTPUT, PRIO_NORMAL + 1, Match.of(**arp_flood, reg0=int(PortType.LOCAL)), from_local,
                   feature=Feature.OUTPUT)
    if local:
        yield Flow(Table.OUTPUT, PRIO_NORMAL, Match.of(**arp_flood), local, feature=Feature.OUTPUT)


def flows(view: DatapathView) -> Iterator[Flow]:
    for net in view.networks:
        if view.has_uplink and net.encap == "vlan":
            yield uplink_flow(net, view.uplink_output())
        yield from flood_flows(view, net)
    # A flood with nothing to flood to (or not ARP) ends here; it has no port in the register.
    yield Flow(Table.OUTPUT, PRIO_LOW, Match.of(reg6=int(PortType.FLOOD)), feature=Feature.OUTPUT)
    yield Flow(Table.OUTPUT, PRIO_MISS, Match(), (OutputReg(Reg.OUT_PORT),), feature=Feature.OUTPUT)
