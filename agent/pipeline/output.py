"""Output stage: send the packet to the port L2 forwarding chose.

One flow outputs to the port held in the register for every destination; packets for the VLAN
uplink are tagged first with their network's VLAN (the trunk carries every VLAN network) and sent
to the uplink port, or with a bond to its first live member (``bundle`` action).
"""

from __future__ import annotations

from collections.abc import Iterator

from agent.ovs.flow import Action, Feature, Flow, Match, OutputReg, PushVlan, SetField
from agent.pipeline.tables import OFPVID_PRESENT, PRIO_MISS, PRIO_NORMAL, PortType, Reg, Table
from agent.pipeline.view import DatapathView
from agent.state import Network


def uplink_flow(net: Network, out: Action) -> Flow:
    return Flow(Table.OUTPUT, PRIO_NORMAL, Match.of(reg6=int(PortType.UPLINK), reg4=net.segment),
                (PushVlan(), SetField("vlan_vid", OFPVID_PRESENT | net.vlan), out), feature=Feature.OUTPUT)


def flows(view: DatapathView) -> Iterator[Flow]:
    if view.has_uplink:
        for net in view.networks:
            if net.encap == "vlan":
                yield uplink_flow(net, view.uplink_output())
    yield Flow(Table.OUTPUT, PRIO_MISS, Match(), (OutputReg(Reg.OUT_PORT),), feature=Feature.OUTPUT)
