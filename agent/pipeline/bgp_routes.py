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
- ECMP: a prefix learned through several next hops (two ToRs) is one L3_FORWARDING flow that also
  loads the next-hop set's select group id into reg10 (``Reg.NEXT_HOPS``); in OUTPUT that group sends
  the packet, one bucket per next hop (its MAC as destination, out of the uplink). OVS picks a bucket
  per connection by a hash of the 5-tuple; a next hop that goes (its session drops, its routes are
  withdrawn) loses its bucket, and the connections it carried move to the others. Prefixes with the
  same next hops share a group; group ids are ``ECMP_GROUP_BASE`` and up (2^31..OFPG_MAX), disjoint
  from the service groups' 1..2^31-1. A prefix with one next hop keeps the plain flow (no group).
  UDP does not use the group (its hash leaves UDP ports out): ``multipath`` picks the next hop by
  the 5-tuple into reg11 (``ecmp_output_flows``).

Remote endpoints of VLAN networks are then reached only through learned routes: L3 forwarding
installs no direct route to them and the ARP responder answers them with the router MAC
(:func:`via_bgp`), so a peer that goes away takes the path with it (Contiv's vlrouter did the same).
Routes are not per tenant: the speaker has one table, like Contiv's.
"""

from __future__ import annotations

import ipaddress
import zlib
from collections.abc import Iterator, Mapping
from functools import lru_cache

from agent.ovs.flow import (
    Action,
    DecTtl,
    Feature,
    Flow,
    Group,
    GroupAction,
    Match,
    Multipath,
    Output,
    Resubmit,
    SetField,
)
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
ECMP_GROUP_BASE = 0x80000000  # ECMP groups: 2^31 and up (service groups take 1..2^31-1)
_ECMP_GROUP_SPACE = 0xFFFFFF00 - ECMP_GROUP_BASE  # below OFPG_MAX
_UDP = 17
_PICKED = 1 << 16  # reg11 of a UDP packet whose next hop multipath picked (the index in bits 0-15)


def via_bgp(view: DatapathView, ep: Endpoint) -> bool:
    """A remote endpoint of a VLAN network, on a host with BGP: reached through a learned route only."""
    return view.bgp is not None and ep.host != view.host and view.network_of(ep).encap == "vlan"


def announced(view: DatapathView) -> list[tuple[Endpoint, int]]:
    """The local endpoints this host announces (VLAN networks), with their ofports."""
    if view.bgp is None:
        return []
    return [(ep, port) for ep, port in view.local_endpoints if view.network_of(ep).encap == "vlan"]


def prefixes(view: DatapathView) -> frozenset[str]:
    """What the speaker should announce: each announced endpoint as a /32 and, with the Bgp object's
    ``announce-subnets``, the subnet of each network with an announced endpoint here (withdrawn with
    the network's last local endpoint)."""
    eps = announced(view)
    out = {f"{ep.ip}/32" for ep, _ in eps}
    if view.state.bgp is not None and view.state.bgp.announce_subnets:
        out |= {str(ipaddress.IPv4Network(view.network_of(ep).subnet, strict=False)) for ep, _ in eps}
    return frozenset(out)


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
    """A prefix with one next hop: its MAC as destination."""
    return _l3_route_flow(route.prefix, router_mac, (SetField("eth_dst", route.next_hop_mac),))


def next_hop_sets(routes: tuple[LearnedRoute, ...]) -> dict[str, tuple[str, ...]]:
    """Prefix -> the MACs of its next hops, sorted (several: ECMP)."""
    out: dict[str, set[str]] = {}
    for route in routes:
        out.setdefault(route.prefix, set()).add(route.next_hop_mac)
    return {prefix: tuple(sorted(macs)) for prefix, macs in out.items()}


def ecmp_group_ids(sets: Mapping[str, tuple[str, ...]]) -> dict[tuple[str, ...], int]:
    """Next-hop set (of two or more MACs; *sets* is ``next_hop_sets``) -> its select group id: a hash
    of the set, so a set keeps its id across restarts and other sets coming or going; a collision moves
    the later set to the next id."""
    out: dict[tuple[str, ...], int] = {}
    used: set[int] = set()
    for macs in sorted({m for m in sets.values() if len(m) > 1}):
        gid = zlib.crc32(",".join(macs).encode()) % _ECMP_GROUP_SPACE
        while gid in used:
            gid = (gid + 1) % _ECMP_GROUP_SPACE
        used.add(gid)
        out[macs] = ECMP_GROUP_BASE + gid
    return out


def _l3_route_flow(prefix: str, router_mac: str, actions: tuple[Action, ...]) -> Flow:
    net = ipaddress.IPv4Network(prefix)
    dst = str(net.network_address) if net.prefixlen == 32 else str(net)
    return Flow(Table.L3_FORWARDING, PRIO_LOW + 1 + net.prefixlen,
                Match.of(eth_type=ETH_IP, eth_dst=ROUTER_MAC, ipv4_dst=dst, reg0=int(PortType.LOCAL)),
                (SetField("eth_src", router_mac), *actions, DecTtl(), SetField(Reg.NETWORK, ROUTED_SEGMENT)),
                goto=next_table(Table.L3_FORWARDING), feature=_FEATURE)


@lru_cache(maxsize=FLOW_CACHE_SIZE)
def ecmp_route_flow(prefix: str, macs: tuple[str, ...], group_id: int, router_mac: str) -> Flow:
    """A prefix with several next hops: its group in reg10 for OUTPUT (the first MAC as destination
    meanwhile, so the frame looks like a single-path one to the tables in between)."""
    return _l3_route_flow(prefix, router_mac, (SetField("eth_dst", macs[0]), SetField(Reg.NEXT_HOPS, group_id)))


def ecmp_output_flows(group_id: int, macs: tuple[str, ...], to_uplink: Action) -> Iterator[Flow]:
    """A routed packet with an ECMP group id: the select group (hashes TCP's 5-tuple, but only the
    addresses of UDP: OVS's select hash leaves UDP ports out, docs/services.md). UDP instead: bit 16
    and ``multipath`` over addresses, protocol and ports (highest random weight) into reg11, then
    back here (resubmit) to the index's flow: the next hop's MAC, out of the uplink."""
    routed = {"reg6": int(PortType.UPLINK), "reg4": ROUTED_SEGMENT, "reg10": group_id}
    yield Flow(Table.OUTPUT, PRIO_NORMAL + 1, Match.of(**routed), (GroupAction(group_id),), feature=_FEATURE)
    udp = {**routed, "eth_type": ETH_IP, "ip_proto": _UDP}
    yield Flow(Table.OUTPUT, PRIO_NORMAL + 2, Match.of(**udp),
               (SetField(Reg.NEXT_HOP_INDEX, _PICKED), Multipath(len(macs), Reg.NEXT_HOP_INDEX),
                Resubmit(Table.OUTPUT)), feature=_FEATURE)
    for i, mac in enumerate(macs):
        yield Flow(Table.OUTPUT, PRIO_NORMAL + 3, Match.of(**udp, reg11=_PICKED | i),
                   (SetField("eth_dst", mac), to_uplink), feature=_FEATURE)


def groups(view: DatapathView) -> Mapping[int, Group]:
    """The ECMP select groups: one bucket per next hop (its MAC, out of the uplink)."""
    if view.bgp is None or not view.has_uplink:
        return {}
    to_uplink = view.uplink_output()
    return {gid: Group(gid, tuple((SetField("eth_dst", mac), to_uplink) for mac in macs))
            for macs, gid in ecmp_group_ids(next_hop_sets(view.bgp.routes)).items()}


def _route_flows(bgp: BgpView, to_uplink: Action) -> Iterator[Flow]:
    sets = next_hop_sets(bgp.routes)
    ids = ecmp_group_ids(sets)
    by_prefix = {r.prefix: r for r in bgp.routes}
    for prefix, macs in sets.items():
        if len(macs) == 1:
            yield learned_route_flow(by_prefix[prefix], bgp.router_mac)
        else:
            yield ecmp_route_flow(prefix, macs, ids[macs], bgp.router_mac)
    for macs, gid in sorted(ids.items()):
        yield from ecmp_output_flows(gid, macs, to_uplink)


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
        yield from _route_flows(bgp, to_uplink)
        yield Flow(Table.L2_FORWARDING_CALC, PRIO_NORMAL, Match.of(reg4=ROUTED_SEGMENT, eth_type=ETH_IP),
                   (SetField(Reg.OUT_PORT, view.uplink_ports[0]), SetField(Reg.DST_TYPE, int(PortType.UPLINK))),
                   goto=next_table(Table.L2_FORWARDING_CALC), feature=_FEATURE)
        yield Flow(Table.OUTPUT, PRIO_NORMAL, Match.of(reg6=int(PortType.UPLINK), reg4=ROUTED_SEGMENT),
                   (to_uplink,), feature=_FEATURE)
    yield Flow(_TABLE, 0, Match())  # nothing else comes here; dropped
