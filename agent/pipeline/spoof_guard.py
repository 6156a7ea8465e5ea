"""Spoof guard: a local endpoint may only send from its own port, MAC and IP.

IPv4 goes on to conntrack, ARP to the ARP responder; anything else from a local endpoint (a forged
address, IPv6, other ethertypes) is dropped by the table miss.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache

from agent.ovs.flow import Feature, Flow, Match
from agent.pipeline.flow_cache import FLOW_CACHE_SIZE
from agent.pipeline.tables import ETH_ARP, ETH_IP, PRIO_MISS, PRIO_NORMAL, Table
from agent.pipeline.view import DatapathView
from agent.state import Endpoint


@lru_cache(maxsize=FLOW_CACHE_SIZE)
def ip_flow(ep: Endpoint, ofport: int) -> Flow:
    return Flow(Table.SPOOF_GUARD, PRIO_NORMAL,
                Match.of(in_port=ofport, eth_src=ep.mac, eth_type=ETH_IP, ipv4_src=ep.ip),
                goto=Table.CT_ZONE, feature=Feature.SPOOF_GUARD)


@lru_cache(maxsize=FLOW_CACHE_SIZE)
def arp_flow(ep: Endpoint, ofport: int) -> Flow:
    return Flow(Table.SPOOF_GUARD, PRIO_NORMAL,
                Match.of(in_port=ofport, eth_src=ep.mac, eth_type=ETH_ARP, arp_spa=ep.ip, arp_sha=ep.mac),
                goto=Table.ARP_RESPONDER, feature=Feature.SPOOF_GUARD)


def flows(view: DatapathView) -> Iterator[Flow]:
    for ep, ofport in view.local_endpoints:
        yield ip_flow(ep, ofport)
        yield arp_flow(ep, ofport)
    yield Flow(Table.SPOOF_GUARD, PRIO_MISS, Match())
