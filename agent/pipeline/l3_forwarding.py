"""L3 forwarding (routing fwdMode): networks of one tenant are routed on the host.

A packet a local endpoint sends to its gateway (the router MAC, answered by the ARP responder) and
addressed to a known endpoint of the same tenant gets the router MAC as source, the endpoint's MAC as
destination, a decremented TTL and the destination network's segment; L2 forwarding then delivers it
locally or through the tunnel/uplink of that network. Tenants never route into each other: the lookup
is keyed on the tenant register. In bridge fwdMode the stage only passes packets on.

L3 mode (a host with BGP, ``bgp_routes``): remote endpoints of VLAN networks get no route here; they
are reached through the routes the host learned, which ``bgp_routes`` adds to this table.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache

from agent.ovs.flow import DecTtl, Feature, Flow, Match, SetField
from agent.pipeline.bgp_routes import via_bgp
from agent.pipeline.flow_cache import FLOW_CACHE_SIZE
from agent.pipeline.tables import ETH_IP, PRIO_LOW, PRIO_MISS, PRIO_NORMAL, ROUTER_MAC, Reg, Table, next_table
from agent.pipeline.view import DatapathView
from agent.state import Endpoint, Network


@lru_cache(maxsize=FLOW_CACHE_SIZE)
def route_flow(ep: Endpoint, net: Network, vrf: int) -> Flow:
    return Flow(Table.L3_FORWARDING, PRIO_NORMAL,
                Match.of(eth_type=ETH_IP, eth_dst=ROUTER_MAC, ipv4_dst=ep.ip, reg5=vrf),
                (SetField("eth_src", ROUTER_MAC), SetField("eth_dst", ep.mac), DecTtl(),
                 SetField(Reg.NETWORK, net.segment)),
                goto=next_table(Table.L3_FORWARDING), feature=Feature.L3_FORWARDING)


def flows(view: DatapathView) -> Iterator[Flow]:
    if view.routing:
        for ep in view.all_endpoints():
            if not via_bgp(view, ep):
                yield route_flow(ep, view.network_of(ep), view.vrf(ep.tenant))
        # Addressed to the router but to no known endpoint of the tenant: no route, drop here rather
        # than flood a frame nobody owns.
        yield Flow(Table.L3_FORWARDING, PRIO_LOW, Match.of(eth_dst=ROUTER_MAC), feature=Feature.L3_FORWARDING)
    yield Flow(Table.L3_FORWARDING, PRIO_MISS, Match(), goto=next_table(Table.L3_FORWARDING))
