"""DNS redirect: containers' port-53 traffic to the agent's responder, in flows (no packet-in).

- SERVICE_LB: a new UDP or TCP connection from a local endpoint to port 53 (any address: whatever
  resolver the container was given) is committed with a DNAT to its tenant's responder address,
  ``169.254.53.<tenant id>:53`` (ct_mark DNS), below the service VIP flows (a service on port 53 wins);
- SERVICE_FORWARD: such a request (original direction) goes to the DNS port, straight to OUTPUT;
- CLASSIFIER: from the DNS port, IPv4 from a tenant's address gets source type DNS and the tenant,
  then the conntrack lookup (which undoes the DNAT); the kernel's ARP requests there (for the
  containers it answers) are answered with ``SERVICE_MAC``;
- SERVICE_FORWARD: an answer (reply direction, source type DNS) to a local endpoint of the tenant
  gets the endpoint's MAC and port and goes to OUTPUT.

A container asks whatever its resolv.conf names; the network's gateway is the natural choice. In
routing fwdMode the ARP responder answers the gateway already; on a VXLAN network in bridge fwdMode no
router owns it, so with DNS on the ARP responder answers it with ``SERVICE_MAC`` (only DNS goes
anywhere from there: other packets to it find no endpoint). A VLAN network's gateway belongs to the
router on the uplink and is left to it.

DNS traffic skips the policy stages: it only ever reaches the agent's responder, which answers within
the asker's tenant. The responder's addresses are reachable by nothing else: other traffic to them
finds no endpoint in L2 forwarding and is dropped.
"""

from __future__ import annotations

from collections.abc import Iterator

from agent.dns.addresses import DNS_PORT_MAC, DNS_PREFIX, tenant_address
from agent.ovs.flow import (
    CT_NEW,
    CT_RPL,
    CT_TRK,
    OFPP_IN_PORT,
    Ct,
    Feature,
    Flow,
    Match,
    Move,
    Output,
    SetField,
)
from agent.pipeline import arp_responder
from agent.pipeline.tables import (
    CT_MARK_DNS,
    ETH_ARP,
    ETH_IP,
    PRIO_HIGH,
    PRIO_LOW,
    PRIO_NORMAL,
    SERVICE_MAC,
    PortType,
    Reg,
    Table,
)
from agent.pipeline.view import DatapathView

_PROTOS = (("udp", 17), ("tcp", 6))


def _answer_any_arp() -> tuple:
    """Turn any ARP request into "target is at SERVICE_MAC", back out of the port it came from."""
    return (Move("eth_src", "eth_dst", 48), SetField("eth_src", SERVICE_MAC), SetField("arp_op", 2),
            Move("arp_sha", "arp_tha", 48), SetField("arp_sha", SERVICE_MAC), Move("arp_tpa", "reg9", 32),
            Move("arp_spa", "arp_tpa", 32), Move("reg9", "arp_spa", 32), Output(OFPP_IN_PORT))


def flows(view: DatapathView) -> Iterator[Flow]:
    port = view.dns_ofport
    if not port or view.aci:
        return
    yield Flow(Table.CLASSIFIER, PRIO_HIGH, Match.of(in_port=port, eth_type=ETH_ARP, arp_op=1), _answer_any_arp(),
               feature=Feature.DNS)
    if not view.routing:
        for net in view.networks:
            # a host-access network's gateway is answered with the router MAC already (the redirect
            # matches port 53 whatever the MAC); only an otherwise unanswered gateway needs one
            if net.encap == "vxlan" and net.gateway and not view.host_access(net):
                yield arp_responder.reply_flow(net, net.gateway, SERVICE_MAC)
    new = (CT_NEW | CT_TRK, CT_NEW | CT_TRK)
    for vrf in sorted(view.vrf_ids.values()):
        address = tenant_address(vrf)
        if not address:
            continue
        yield Flow(Table.CLASSIFIER, PRIO_HIGH, Match.of(in_port=port, eth_type=ETH_IP, ipv4_src=address),
                   (SetField(Reg.SRC_TYPE, int(PortType.DNS)), SetField(Reg.TENANT, vrf)), goto=Table.CT_ZONE,
                   feature=Feature.DNS)
        for name, number in _PROTOS:
            match = Match.of(eth_type=ETH_IP, ct_state=new, ct_mark=(0, CT_MARK_DNS), reg0=int(PortType.LOCAL),
                             reg5=vrf, ip_proto=number, **{f"{name}_dst": 53})
            yield Flow(Table.SERVICE_LB, PRIO_LOW, match,
                       (Ct(Reg.TENANT, commit=True, table=Table.SERVICE_FORWARD, nat_dst=f"{address}:53",
                           mark=CT_MARK_DNS),), feature=Feature.DNS)
    marked = (CT_MARK_DNS, CT_MARK_DNS)
    query = Match.of(eth_type=ETH_IP, ct_state=(CT_TRK, CT_TRK | CT_RPL), ct_mark=marked, reg0=int(PortType.LOCAL),
                     ipv4_dst=f"{DNS_PREFIX}0/24")
    yield Flow(Table.SERVICE_FORWARD, PRIO_HIGH, query,
               (SetField("eth_dst", DNS_PORT_MAC), SetField(Reg.OUT_PORT, port)), goto=Table.OUTPUT,
               feature=Feature.DNS)
    answer = (CT_RPL | CT_TRK, CT_RPL | CT_TRK)
    for ep, ofport in view.local_endpoints:
        match = Match.of(eth_type=ETH_IP, ct_state=answer, ct_mark=marked, reg0=int(PortType.DNS),
                         reg5=view.vrf(ep.tenant), ipv4_dst=ep.ip)
        yield Flow(Table.SERVICE_FORWARD, PRIO_NORMAL, match,
                   (SetField("eth_dst", ep.mac), SetField(Reg.OUT_PORT, ofport)), goto=Table.OUTPUT,
                   feature=Feature.DNS)
