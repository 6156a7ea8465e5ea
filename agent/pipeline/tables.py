"""The pipeline's tables, registers and constants (documented in docs/pipeline.md).

Every feature declares the tables it needs with their stage (``framework.TableSpec``); the framework
orders them and numbers them from 0, so no id is written by hand and a new feature's table shifts
the others without any code changing. ``Table`` is the realized enum (``Table.SPOOF_GUARD`` etc.);
``PIPELINE.next(t)`` is the table after *t*. A packet only ever moves to a higher table (goto_table
cannot go back).
"""

from __future__ import annotations

from enum import IntEnum

from agent.ovs.flow import Feature
from agent.pipeline.framework import Pipeline, Stage, TableSpec

# The declarations, grouped by the feature that owns them (order inside a stage is the path order).
DECLARED: tuple[TableSpec, ...] = (
    # classifier
    TableSpec("CLASSIFIER", Stage.CLASSIFIER, Feature.CLASSIFIER,
              "ingress port -> source type, segment, tenant (and a local endpoint's EPG); others dropped"),
    TableSpec("UPLINK", Stage.CLASSIFIER, Feature.CLASSIFIER,
              "bonded uplink: admit the active member's packets only, pop the VLAN tag"),
    TableSpec("ROUTER_PORT", Stage.CLASSIFIER, Feature.BGP,
              "L3 mode (BGP): the router port's frames to the uplink, the uplink's untagged frames to it, "
              "routed frames for announced local endpoints in"),
    TableSpec("SRC_EPG", Stage.CLASSIFIER, Feature.EPG,
              "tunnel/uplink packets: source EPG from the source address"),
    # host access
    TableSpec("HOST_IN", Stage.CLASSIFIER, Feature.HOST_ACCESS,
              "IPv4 from the host port: per local endpoint of a host-access network, its segment, tenant "
              "and MACs; container-subnet sources (hairpins, spoofs) and anything else dropped"),
    # spoof guard
    TableSpec("SPOOF_GUARD", Stage.SPOOF_GUARD, Feature.SPOOF_GUARD,
              "a local endpoint's IPv4 and ARP must carry its port, MAC and IP; the rest is dropped"),
    # ARP responder
    TableSpec("ARP_RESPONDER", Stage.ARP_RESPONDER, Feature.ARP_RESPONDER,
              "ARP requests for known endpoints (and the routing gateway) answered in the switch"),
    # conntrack
    TableSpec("CT_ZONE", Stage.CONNTRACK_STATE, Feature.CONNTRACK, "IPv4 through ct(zone=tenant)"),
    TableSpec("CT_STATE", Stage.CONNTRACK_STATE, Feature.CONNTRACK, "invalid connections dropped"),
    # service load balancing
    TableSpec("SERVICE_LB", Stage.SERVICE_LB, Feature.SERVICE,
              "a new connection to a service VIP and port -> that port's select group (DNAT to one provider)"),
    TableSpec("SERVICE_AFFINITY", Stage.SERVICE_LB, Feature.SERVICE,
              "client-IP affinity: learned flows (client, VIP, port) -> the provider it had, in reg8 "
              "(reached by resubmit only)"),
    TableSpec("SERVICE_DNAT", Stage.SERVICE_LB, Feature.SERVICE,
              "a new UDP connection to a service port, its provider picked by multipath -> DNAT to it"),
    TableSpec("SERVICE_FORWARD", Stage.SERVICE_LB, Feature.SERVICE,
              "a DNATed request (service ct_mark) -> the provider's MAC and segment, for L2 forwarding"),
    # egress policy
    TableSpec("DST_EPG", Stage.EGRESS_POLICY, Feature.EPG,
              "destination EPG from the destination address (out rules with a to-group)"),
    TableSpec("EGRESS_POLICY", Stage.EGRESS_POLICY, Feature.POLICY, "out rules of the sender's EPG"),
    # L3 forwarding
    TableSpec("L3_FORWARDING", Stage.L3_FORWARDING, Feature.L3_FORWARDING,
              "routing fwdMode: router MAC + known endpoint -> rewrite MACs, dec_ttl, destination segment"),
    # QoS
    TableSpec("QOS", Stage.QOS, Feature.QOS,
              "IPv4 from a local endpoint whose group has a netprofile: its meter (rate, burst), its DSCP"),
    # L2 forwarding
    TableSpec("L2_FORWARDING_CALC", Stage.L2_FORWARDING, Feature.L2_FORWARDING,
              "destination MAC -> output port, port type and the receiver's EPG in registers; "
              "ARP -> flood; IPv4 to no endpoint MAC -> uplink (from a local endpoint, VLAN) or drop"),
    # ingress policy
    TableSpec("INGRESS_POLICY", Stage.INGRESS_POLICY, Feature.POLICY, "in rules of the receiver's EPG"),
    # conntrack
    TableSpec("CT_COMMIT", Stage.CONNTRACK_COMMIT, Feature.CONNTRACK, "new allowed connections committed"),
    # output
    TableSpec("OUTPUT", Stage.OUTPUT, Feature.OUTPUT,
              "send: to the chosen port, tagged to the uplink, or an ARP flood within the segment"),
)

PIPELINE = Pipeline(DECLARED)
Table = PIPELINE.table

# Stage name -> tables, in pipeline order (for --dump-pipeline and /inspect/driver).
STAGES: list[tuple[str, tuple[IntEnum, ...]]] = [(stage.name.lower(), tables)
                                                  for stage, tables in PIPELINE.stages()]


def next_table(table: int) -> IntEnum:
    """Where a packet that *table* passes on goes (the framework's goto chain)."""
    return PIPELINE.next(table)


class Reg:
    """Register roles (whole 32-bit registers: simpler to read in dumps than bit fields)."""

    SRC_TYPE = "reg0"  # PortType of the ingress port
    OUT_PORT = "reg1"  # ofport chosen by L2 forwarding
    SRC_EPG = "reg2"  # source endpoint-group id (0: none/unknown)
    DST_EPG = "reg3"  # destination endpoint-group id
    NETWORK = "reg4"  # network segment (VLAN tag, or VNI | 1<<24)
    TENANT = "reg5"  # tenant (VRF) id, also the conntrack zone
    DST_TYPE = "reg6"  # PortType of the egress port
    BOND_ACTIVE = "reg7"  # ofport of the bond member currently active (uplink packets, bonds only)
    PROVIDER = "reg8"  # a service port's provider: the index multipath picked (UDP), or its address (affinity)
    NEXT_HOPS = "reg10"  # L3 mode: a routed packet's ECMP select group id (0: one next hop, no group)
    NEXT_HOP_INDEX = "reg11"  # L3 mode, ECMP, UDP: 1<<16 | the next hop multipath picked (OUTPUT)


class PortType(IntEnum):
    TUNNEL = 1
    HOST = 2  # the host-access port (contivh0): the host's own stack, and the way out of the cluster
    LOCAL = 3
    UPLINK = 4
    FLOOD = 5  # destination type only: L2 forwarding decided to flood (ARP), OUTPUT replicates
    DNS = 6  # source type only: the agent's DNS responder answering a container


# Routing fwdMode: the MAC that answers for every gateway and sources routed packets (Contiv's value).
ROUTER_MAC = "00:00:11:11:11:11"

# The MAC the ARP responder gives for every service VIP (no endpoint owns a VIP; the SERVICE_LB stage
# takes packets to a VIP by address, whatever their MAC).
SERVICE_MAC = "00:00:11:11:11:12"
# ct_mark of a connection a service group DNATed (set by the group's bucket when it commits), and of a
# container's DNS query redirected to the agent's responder (agent/pipeline/dns_redirect.py).
CT_MARK_SERVICE = 0x1
CT_MARK_DNS = 0x2

# Well-known ofports (requested through OVSDB ofport_request); endpoints start at FIRST_ENDPOINT_OFPORT.
TUNNEL_OFPORT = 1
UPLINK_OFPORT = 2  # a bond's members take UPLINK_OFPORT, UPLINK_OFPORT + 1, ...
HOST_OFPORT = 15  # the host-access port (docs/host-access.md)
FIRST_ENDPOINT_OFPORT = 16
MAX_UPLINKS = HOST_OFPORT - UPLINK_OFPORT
ROUTER_OFPORT = 65000  # L3 mode: the router port (``inb01``, the BGP speaker's address), far above endpoints
ROUTER_PORT = "inb01"  # Contiv's name for it
DNS_OFPORT = 65001  # the agent's DNS responder port (``contivdns``, --dns), clear of uplinks and endpoints

# reg4 of a packet routed to the uplink through a BGP-learned route: no segment, sent untagged.
ROUTED_SEGMENT = 0

ETH_IP = 0x0800
ETH_ARP = 0x0806
ETH_VLAN = 0x8100
OFPVID_PRESENT = 0x1000

# Priorities shared by stages.
PRIO_BYPASS = 65000  # established/related traffic skips policy
PRIO_SKIP = 64000  # traffic a policy table does not apply to (e.g. not from a local endpoint)
PRIO_RULE_BASE = 1000  # policy rule flows: PRIO_RULE_BASE + 2*priority (+1 for deny)
PRIO_HIGH = 200
PRIO_NORMAL = 100
PRIO_LOW = 10
PRIO_MISS = 0
