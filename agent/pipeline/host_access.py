"""Host access: containers of host-access networks reach their host and, through it, the world.

The host port (``contivh0``, an OVS internal port with the router MAC and the private subnet's
address, see agent.host_access and agent.host_kernel) is the host's own IP stack; the host routes each
served container subnet to it and masquerades what containers send elsewhere. In the pipeline:

- out: IPv4 a local endpoint of a served network sends to the router MAC (its gateway, which the ARP
  responder answers with that MAC in both fwdModes) and that L3 forwarding did not route to a known
  endpoint is *decided* in L2 forwarding like any destination: to the host port (port type HOST). It
  has passed egress policy by then (the destination address is what the host routes by, and what an
  ``out`` rule to an outside address judges) and goes on through the conntrack commit, so replies are
  established;
- in: the classifier marks the host port's IPv4 (source type HOST) and sends it to HOST_IN, which
  gives a packet for a local endpoint of a served network that endpoint's segment, tenant and MACs;
  L2 forwarding then decides the endpoint's port as for any packet and ingress policy judges it (an
  ``in`` rule applies to the host's connections; replies to a container's own connections are
  established). Sources inside a served subnet are dropped first: a container's packet the host routed
  back (to another tenant's or another host's container, or a forged destination) would otherwise
  re-enter as if the host sent it, passing the first container's egress policy only once and the
  tenant boundary never. Packets for other addresses (remote endpoints: their own host serves them)
  are dropped by the miss;
- ARP: the host's requests for a local endpoint's address are answered in the switch (ARP_RESPONDER).

Only the endpoint's own host serves it: a remote container answers to its own host's copy of the
private address, so a host cannot hold connections with containers elsewhere.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache

from agent.ovs.flow import Feature, Flow, Match, SetField
from agent.pipeline.arp_responder import host_reply_flow
from agent.pipeline.flow_cache import FLOW_CACHE_SIZE
from agent.pipeline.l2_forwarding import decide
from agent.pipeline.tables import (
    ETH_ARP,
    ETH_IP,
    HOST_OFPORT,
    PRIO_HIGH,
    PRIO_LOW,
    PRIO_MISS,
    PRIO_NORMAL,
    ROUTER_MAC,
    PortType,
    Reg,
    Table,
    next_table,
)
from agent.pipeline.view import DatapathView
from agent.state import Endpoint, Network


def classifier_flows() -> Iterator[Flow]:
    """The host port's IPv4 to HOST_IN, its ARP to the ARP responder (source type HOST for both)."""
    mark = (SetField(Reg.SRC_TYPE, int(PortType.HOST)),)
    yield Flow(Table.CLASSIFIER, PRIO_NORMAL, Match.of(in_port=HOST_OFPORT, eth_type=ETH_IP), mark,
               goto=Table.HOST_IN, feature=Feature.HOST_ACCESS)
    yield Flow(Table.CLASSIFIER, PRIO_NORMAL, Match.of(in_port=HOST_OFPORT, eth_type=ETH_ARP), mark,
               goto=Table.ARP_RESPONDER, feature=Feature.HOST_ACCESS)


@lru_cache(maxsize=FLOW_CACHE_SIZE)
def hairpin_drop_flow(net: Network) -> Flow:
    """From the host with a source in a served container subnet: a routed-back container packet."""
    return Flow(Table.HOST_IN, PRIO_HIGH, Match.of(eth_type=ETH_IP, ipv4_src=net.cidr), feature=Feature.HOST_ACCESS)


@lru_cache(maxsize=FLOW_CACHE_SIZE)
def to_endpoint_flow(ep: Endpoint, net: Network, vrf: int) -> Flow:
    """From the host to local endpoint *ep*: its segment and tenant (conntrack zone), router MAC as
    source and the endpoint's MAC as destination, then conntrack and the policies like any packet."""
    return Flow(Table.HOST_IN, PRIO_NORMAL, Match.of(eth_type=ETH_IP, ipv4_dst=ep.ip),
                (SetField("eth_src", ROUTER_MAC), SetField("eth_dst", ep.mac), SetField(Reg.NETWORK, net.segment),
                 SetField(Reg.TENANT, vrf)), goto=Table.CT_ZONE, feature=Feature.HOST_ACCESS)


@lru_cache(maxsize=FLOW_CACHE_SIZE)
def unrouted_flow(net: Network) -> Flow:
    """Routing fwdMode: to the router MAC for no known endpoint, on a served network: on to L2
    forwarding (which sends it to the host) instead of L3 forwarding's drop."""
    return Flow(Table.L3_FORWARDING, PRIO_LOW + 1, Match.of(reg4=net.segment, eth_dst=ROUTER_MAC),
                goto=next_table(Table.L3_FORWARDING), feature=Feature.HOST_ACCESS)


@lru_cache(maxsize=FLOW_CACHE_SIZE)
def to_host_flow(net: Network) -> Flow:
    """IPv4 from a local endpoint of *net* to the router MAC: the host port."""
    match = Match.of(reg4=net.segment, reg0=int(PortType.LOCAL), eth_type=ETH_IP, eth_dst=ROUTER_MAC)
    return decide(match, HOST_OFPORT, PortType.HOST, feature=Feature.HOST_ACCESS)


def flows(view: DatapathView) -> Iterator[Flow]:
    yield Flow(Table.HOST_IN, PRIO_MISS, Match())
    if not view.host_networks:
        return
    yield from classifier_flows()
    for net in view.host_networks:
        yield hairpin_drop_flow(net)
        yield to_host_flow(net)
        if view.routing:
            yield unrouted_flow(net)
    for ep, _ in view.local_endpoints:
        net = view.network_of(ep)
        if view.host_access(net):
            yield to_endpoint_flow(ep, net, view.vrf(ep.tenant))
            yield host_reply_flow(ep.ip, ep.mac)
