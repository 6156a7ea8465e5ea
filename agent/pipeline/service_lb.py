"""Service load balancing (Antrea's proxy, no packet-in): a service VIP spread over its providers.

- SERVICE_LB: a *new* connection from a local endpoint to a VIP's port (``ct_state=+new+trk``, tenant,
  VIP, protocol, port): one flow per service port whatever the number of clients. A TCP port goes to
  its OpenFlow select group; each bucket is one provider,
  ``ct(commit, zone=tenant, nat(dst=provider:target), exec(ct_mark=service), table=SERVICE_FORWARD)``,
  and OVS picks the bucket per connection (dp_hash over the 5-tuple, computed in the datapath). A UDP
  port cannot use the group: OVS's select hash leaves UDP ports out (every datagram of one client would
  reach one provider) and OpenFlow 1.3 cannot ask for other fields; it uses ``multipath`` over the
  addresses and ports (one provider index into a register), then
- SERVICE_DNAT: per UDP service port and provider index, the same commit-and-DNAT as a bucket.
- Client-IP affinity (a service with an affinity timeout, TCP and UDP alike): SERVICE_LB clears reg8,
  resubmits to SERVICE_AFFINITY, whose ``learn``-ed flows (client, VIP, protocol, port; idle timeout =
  the affinity) load the provider that client had into reg8, then resubmits to SERVICE_DNAT: a flow
  per provider address in reg8 learns (refreshes) that flow and commits the DNAT; with no (or a
  removed) provider in reg8, a lower flow hands the packet to the port's select group, whose bucket
  loads its provider's address into reg8 and resubmits to SERVICE_DNAT again. Learned flows are
  per client (that is what affinity is); they go with an agent restart (a new round) or their timeout.
  Later packets of a connection never come back here: the conntrack lookup (CT_ZONE, ``ct(nat)``)
  applies the connection's DNAT to its requests and the reverse to its replies, so they are no longer
  addressed to the VIP.
- SERVICE_FORWARD: a request of a DNATed connection (its ct_mark, original direction) addressed to a
  provider gets the provider's MAC and segment, so L2 forwarding delivers it like any packet to that
  endpoint: the client addressed the VIP's MAC (the ARP responder answers VIPs with ``SERVICE_MAC``).
  One flow per provider of a service.

Policy sees the provider: the stage sits after the conntrack lookup and before egress policy, so the
destination EPG (DST_EPG), egress rules, L2 forwarding and the receiver's ingress rules all judge the
provider's real address. The bucket commits the connection (NAT needs it); a connection policy then
drops is committed but never answered, so it stays ``+new`` and every later packet of it is judged
again, and CT_COMMIT leaves service connections alone (already committed, with their NAT).

Group ids are derived from the service port's key (tenant, service, protocol, port), so adding or
removing one service never renumbers another's group. A provider removed from a TCP port loses its
bucket (the group is modified in place: the other providers' connections and the flows are untouched);
from a UDP port, its index flow (the others shift, which only changes where *new* connections go); in
both cases the reconciler then flushes its connections through that port from conntrack.
"""

from __future__ import annotations

import ipaddress
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache

from agent.ovs.flow import (
    CT_INV,
    CT_NEW,
    CT_RPL,
    CT_TRK,
    Ct,
    Feature,
    Flow,
    Group,
    GroupAction,
    LearnAffinity,
    Match,
    Multipath,
    Resubmit,
    SetField,
    make_cookie,
)
from agent.pipeline import arp_responder
from agent.pipeline.flow_cache import FLOW_CACHE_SIZE
from agent.pipeline.tables import (
    CT_MARK_SERVICE,
    ETH_IP,
    PRIO_HIGH,
    PRIO_LOW,
    PRIO_MISS,
    PRIO_NORMAL,
    SERVICE_MAC,
    PortType,
    Reg,
    Table,
    next_table,
)
from agent.pipeline.view import DatapathView
from agent.state import PROTOCOLS, Endpoint, Service, ServicePort

_GROUP_ID_SPACE = 0x7FFFFFFF  # below OFPG_MAX; ids are 1..2^31-1
HAIRPIN_ZONE = 0x8000  # a tenant's hairpin SNAT zone: HAIRPIN_ZONE | its zone (tenant zones stay below)


@dataclass(frozen=True)
class Backend:
    """One provider of one service port, as a bucket and as a conntrack flush sees it."""

    ip: str
    target: int


@dataclass(frozen=True)
class BalancedPort:
    """One service port realized on this host: its group id (TCP), the tenant's zone, the VIP side and
    the providers it balances over."""

    group_id: int
    zone: int
    vip: str
    port: ServicePort
    backends: tuple[Backend, ...]

    affinity: int = 0  # client-IP affinity timeout (s); 0: none

    @property
    def group(self) -> Group:
        if self.affinity:
            return Group(self.group_id, tuple((SetField(Reg.PROVIDER, _ip_int(b.ip)), Resubmit(Table.SERVICE_DNAT))
                                              for b in self.backends))
        return Group(self.group_id, tuple((_dnat(Reg.TENANT, b),) for b in self.backends))


def _ip_int(ip: str) -> int:
    return int(ipaddress.IPv4Address(ip))


@lru_cache(maxsize=FLOW_CACHE_SIZE)
def _dnat(zone_reg: str, backend: Backend) -> Ct:
    return Ct(zone_reg, commit=True, table=Table.SERVICE_FORWARD, nat_dst=f"{backend.ip}:{backend.target}",
              mark=CT_MARK_SERVICE)


def _port_key(svc: Service, port: ServicePort) -> str:
    return f"{svc.tenant}:{svc.name}/{port.protocol}/{port.port}"


def group_ids(services: tuple[Service, ...]) -> dict[str, int]:
    """Service port key -> group id: a hash of the key, stable across restarts and unaffected by other
    services; a collision (rare) moves the later key (in sorted order) to the next free id."""
    out: dict[str, int] = {}
    used: set[int] = set()
    for key in sorted(_port_key(s, p) for s in services for p in s.ports):
        gid = zlib.crc32(key.encode()) % _GROUP_ID_SPACE + 1
        while gid in used:
            gid = gid % _GROUP_ID_SPACE + 1
        used.add(gid)
        out[key] = gid
    return out


def providers(view: DatapathView, svc: Service) -> list[Endpoint]:
    """The service's providers this host can reach (local with a port, or remote and reachable), of the
    service's tenant, in address order."""
    reachable = {ep.id: ep for ep in view.all_endpoints()}
    eps = (reachable.get(ep_id) for ep_id in svc.providers)
    return sorted((ep for ep in eps if ep is not None and ep.tenant == svc.tenant),
                  key=lambda ep: tuple(int(x) for x in ep.ip.split(".")))


def balanced_ports(view: DatapathView) -> Mapping[str, BalancedPort]:
    """Service port key -> what it balances over, for every service port with a reachable provider."""
    if view.aci:  # the fabric enforces policy and there is no conntrack on the host
        return {}
    ids = group_ids(view.state.services)
    out: dict[str, BalancedPort] = {}
    for svc in view.state.services:
        if svc.tenant not in view.vrf_ids:
            continue
        eps = providers(view, svc)
        for port in svc.ports:
            key = _port_key(svc, port)
            if eps:
                out[key] = BalancedPort(ids[key], view.vrf(svc.tenant), svc.vip, port,
                                        tuple(Backend(ep.ip, port.target) for ep in eps), svc.affinity)
    return out


def groups(view: DatapathView) -> Mapping[int, Group]:
    """The select groups of the TCP service ports and of every port of a service with affinity."""
    return {b.group_id: b.group for b in balanced_ports(view).values() if b.port.protocol == "tcp" or b.affinity}


def _l4(port: ServicePort) -> dict[str, int]:
    return {"ip_proto": PROTOCOLS[port.protocol], f"{port.protocol}_dst": port.port}


@lru_cache(maxsize=FLOW_CACHE_SIZE)
def vip_flow(balanced: BalancedPort) -> Flow:
    """A new connection from a local endpoint to the VIP's port -> a provider: the port's select group
    (TCP), or a provider index by multipath and on to SERVICE_DNAT (UDP)."""
    match = _new_to(balanced.zone, balanced.vip, balanced.port)
    if balanced.affinity:
        return Flow(Table.SERVICE_LB, PRIO_NORMAL, match,
                    (SetField(Reg.PROVIDER, 0), Resubmit(Table.SERVICE_AFFINITY), Resubmit(Table.SERVICE_DNAT)),
                    feature=Feature.SERVICE)
    if balanced.port.protocol == "tcp":
        return Flow(Table.SERVICE_LB, PRIO_NORMAL, match, (GroupAction(balanced.group_id),), feature=Feature.SERVICE)
    return Flow(Table.SERVICE_LB, PRIO_NORMAL, match, (Multipath(len(balanced.backends), Reg.PROVIDER),),
                goto=Table.SERVICE_DNAT, feature=Feature.SERVICE)


def _new_to(zone: int, vip: str, port: ServicePort, **more: int) -> Match:
    return Match.of(eth_type=ETH_IP, ct_state=(CT_NEW | CT_TRK, CT_NEW | CT_TRK), reg0=int(PortType.LOCAL), reg5=zone,
                    ipv4_dst=vip, **_l4(port), **more)


@lru_cache(maxsize=FLOW_CACHE_SIZE)
def udp_dnat_flow(zone: int, vip: str, port: ServicePort, index: int, backend: Backend) -> Flow:
    """The provider multipath picked (by index) for a new UDP connection: commit with its DNAT."""
    return Flow(Table.SERVICE_DNAT, PRIO_NORMAL, _new_to(zone, vip, port, reg8=index), (_dnat(Reg.TENANT, backend),),
                feature=Feature.SERVICE)


def affinity_flows(balanced: BalancedPort) -> Iterator[Flow]:
    """SERVICE_DNAT of a port with affinity: per provider address in reg8, learn (refresh) the client's
    flow and DNAT; anything else (no provider yet, or one since removed) -> the select group."""
    proto = PROTOCOLS[balanced.port.protocol]
    learn = LearnAffinity(Table.SERVICE_AFFINITY, balanced.affinity, proto, f"{balanced.port.protocol}_dst",
                          PRIO_NORMAL, make_cookie(0, Feature.SERVICE))
    for backend in balanced.backends:
        yield Flow(Table.SERVICE_DNAT, PRIO_NORMAL,
                   _new_to(balanced.zone, balanced.vip, balanced.port, reg8=_ip_int(backend.ip)),
                   (learn, _dnat(Reg.TENANT, backend)), feature=Feature.SERVICE)
    yield Flow(Table.SERVICE_DNAT, PRIO_LOW, _new_to(balanced.zone, balanced.vip, balanced.port),
               (GroupAction(balanced.group_id),), feature=Feature.SERVICE)


@lru_cache(maxsize=FLOW_CACHE_SIZE)
def provider_flow(zone: int, ep_ip: str, ep_mac: str, segment: int) -> Flow:
    """A DNATed request to a provider: its MAC and segment, so L2 forwarding finds it."""
    match = Match.of(eth_type=ETH_IP, ct_state=(CT_TRK, CT_TRK | CT_RPL), ct_mark=(CT_MARK_SERVICE, CT_MARK_SERVICE),
                     reg5=zone, ipv4_dst=ep_ip)
    return Flow(Table.SERVICE_FORWARD, PRIO_NORMAL, match,
                (SetField("eth_dst", ep_mac), SetField(Reg.NETWORK, segment)),
                goto=next_table(Table.SERVICE_FORWARD), feature=Feature.SERVICE)


def hairpin_zone(zone: int) -> int:
    return HAIRPIN_ZONE | zone


@lru_cache(maxsize=FLOW_CACHE_SIZE)
def hairpin_request_flow(zone: int, vip: str, ep_ip: str, ep_mac: str, segment: int) -> Flow:
    """A local provider's own connection to a VIP that picked it (after the DNAT: from itself to itself):
    SNAT to the VIP in the tenant's hairpin zone (Linux drops a packet from its own address, and the
    reply must come back through the switch to be un-DNATed), the VIP's MAC as source, and the port it
    came in on allowed as output (in_port cleared: OpenFlow never sends a packet back out of its
    ingress port otherwise). Policy after it sees the provider as both ends, as it is."""
    match = Match.of(eth_type=ETH_IP, ct_state=(CT_TRK, CT_TRK | CT_INV | CT_RPL),
                     ct_mark=(CT_MARK_SERVICE, CT_MARK_SERVICE), reg5=zone, ipv4_src=ep_ip, ipv4_dst=ep_ip,
                     ct_nw_dst=vip)
    snat = Ct("", zone=hairpin_zone(zone), commit=True, nat_src=vip, mark=CT_MARK_SERVICE,
              table=next_table(Table.SERVICE_FORWARD))
    return Flow(Table.SERVICE_FORWARD, PRIO_HIGH, match,
                (SetField("eth_src", SERVICE_MAC), SetField("eth_dst", ep_mac), SetField(Reg.NETWORK, segment),
                 SetField("nxm_in_port", 0), snat), feature=Feature.SERVICE)


@lru_cache(maxsize=FLOW_CACHE_SIZE)
def hairpin_reply_lookup_flow(zone: int, vip: str, ep_ip: str, port: ServicePort) -> Flow:
    """The provider's reply to its own hairpinned connection (to the VIP, from the target port): undo
    the SNAT in the hairpin zone first, then the tenant's lookup (same table, now tracked) undoes the
    DNAT."""
    match = Match.of(eth_type=ETH_IP, ct_state=(0, CT_TRK), reg5=zone, ipv4_src=ep_ip, ipv4_dst=vip,
                     ip_proto=PROTOCOLS[port.protocol], **{f"{port.protocol}_src": port.target})
    return Flow(Table.CT_ZONE, PRIO_NORMAL, match, (Ct("", zone=hairpin_zone(zone), nat=True, table=Table.CT_ZONE),),
                feature=Feature.SERVICE)


@lru_cache(maxsize=FLOW_CACHE_SIZE)
def hairpin_reply_flow(zone: int, ep_ip: str, ep_mac: str, ofport: int, segment: int) -> Flow:
    """That reply, un-NATed: from the VIP to the provider, and in by the provider's own port (which is
    what says hairpin; it was sent to the VIP's MAC, or to the router's in routing fwdMode when the VIP
    is in another network): the provider's MAC and segment, the VIP's MAC as source, and back out of
    the port it came in on."""
    match = Match.of(eth_type=ETH_IP, ct_state=(CT_TRK | CT_RPL, CT_TRK | CT_RPL), in_port=ofport,
                     ct_mark=(CT_MARK_SERVICE, CT_MARK_SERVICE), reg5=zone, ipv4_dst=ep_ip)
    return Flow(Table.SERVICE_FORWARD, PRIO_NORMAL, match,
                (SetField("eth_src", SERVICE_MAC), SetField("eth_dst", ep_mac), SetField(Reg.NETWORK, segment),
                 SetField("nxm_in_port", 0)), goto=next_table(Table.SERVICE_FORWARD), feature=Feature.SERVICE)


def hairpin_flows(view: DatapathView, svc: Service, eps: list[Endpoint], local: Mapping[str, int]) -> Iterator[Flow]:
    """For each local provider of *svc* (*local*: this host's endpoints' ofports, by id): its
    connections to the VIP that land on itself."""
    zone = view.vrf(svc.tenant)
    for ep in eps:
        if ep.id in local:
            segment = view.network_of(ep).segment
            yield hairpin_request_flow(zone, svc.vip, ep.ip, ep.mac, segment)
            yield hairpin_reply_flow(zone, ep.ip, ep.mac, local[ep.id], segment)
            for port in svc.ports:
                yield hairpin_reply_lookup_flow(zone, svc.vip, ep.ip, port)


def flows(view: DatapathView) -> Iterator[Flow]:
    for balanced in balanced_ports(view).values():
        yield vip_flow(balanced)
        if balanced.affinity:
            yield from affinity_flows(balanced)
        elif balanced.port.protocol == "udp":
            for i, backend in enumerate(balanced.backends):
                yield udp_dnat_flow(balanced.zone, balanced.vip, balanced.port, i, backend)
    if not view.aci:
        local = {ep.id: ofport for ep, ofport in view.local_endpoints}
        for svc in view.state.services:
            if svc.tenant not in view.vrf_ids:
                continue
            eps = providers(view, svc)
            for ep in eps:
                yield provider_flow(view.vrf(svc.tenant), ep.ip, ep.mac, view.network_of(ep).segment)
            yield from hairpin_flows(view, svc, eps, local)
    # SERVICE_AFFINITY is reached by resubmit only: its miss does nothing (the resubmit returns), and
    # SERVICE_LB's miss goes past it.
    yield Flow(Table.SERVICE_LB, PRIO_MISS, Match(), goto=Table.SERVICE_DNAT)
    yield Flow(Table.SERVICE_AFFINITY, PRIO_MISS, Match())
    for table in (Table.SERVICE_DNAT, Table.SERVICE_FORWARD):
        yield Flow(table, PRIO_MISS, Match(), goto=next_table(table))


def arp_flows(view: DatapathView) -> Iterator[Flow]:
    """Every VIP of a tenant is answered on the tenant's segments with SERVICE_MAC (in both ARP modes:
    no endpoint would answer for it)."""
    if view.aci:
        return
    for svc in view.state.services:
        for net in view.networks:
            if net.tenant == svc.tenant:
                yield arp_responder.reply_flow(net, svc.vip, SERVICE_MAC)
