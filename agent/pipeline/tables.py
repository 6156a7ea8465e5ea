"""Table numbers, registers and constants of the pipeline (documented in docs/pipeline.md).

Tables are fixed numbers in stage order, with gaps so a stage can grow a table without renumbering
the others. A packet only ever moves to a higher table (goto_table cannot go back).
"""

from __future__ import annotations

from enum import IntEnum


class Table(IntEnum):
    CLASSIFIER = 0
    UPLINK = 1  # packets from a bonded uplink: admitted on the active member only, VLAN classified
    SRC_EPG = 2  # packets from tunnel/uplink: source EPG from the source address
    SPOOF_GUARD = 10
    ARP_RESPONDER = 20
    CT_ZONE = 30
    CT_STATE = 31
    DST_EPG = 39  # destination EPG from the destination address (needed by egress to-group rules)
    EGRESS_POLICY = 40
    L3_FORWARDING = 50
    L2_FORWARDING = 60
    INGRESS_POLICY = 70
    CT_COMMIT = 80
    OUTPUT = 90


# Stage name -> tables, in pipeline order (for --dump-pipeline and /inspect/driver).
STAGES: list[tuple[str, tuple[Table, ...]]] = [
    ("classifier", (Table.CLASSIFIER, Table.UPLINK, Table.SRC_EPG)),
    ("spoof_guard", (Table.SPOOF_GUARD,)),
    ("arp_responder", (Table.ARP_RESPONDER,)),
    ("conntrack_state", (Table.CT_ZONE, Table.CT_STATE)),
    ("egress_policy", (Table.DST_EPG, Table.EGRESS_POLICY)),
    ("l3_forwarding", (Table.L3_FORWARDING,)),
    ("l2_forwarding", (Table.L2_FORWARDING,)),
    ("ingress_policy", (Table.INGRESS_POLICY,)),
    ("conntrack_commit", (Table.CT_COMMIT,)),
    ("output", (Table.OUTPUT,)),
]


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


class PortType(IntEnum):
    TUNNEL = 1
    LOCAL = 3
    UPLINK = 4


# Routing fwdMode: the MAC that answers for every gateway and sources routed packets (Contiv's value).
ROUTER_MAC = "00:00:11:11:11:11"

# Well-known ofports (requested through OVSDB ofport_request); endpoints start at FIRST_ENDPOINT_OFPORT.
TUNNEL_OFPORT = 1
UPLINK_OFPORT = 2  # a bond's members take UPLINK_OFPORT, UPLINK_OFPORT + 1, ...
FIRST_ENDPOINT_OFPORT = 16
MAX_UPLINKS = FIRST_ENDPOINT_OFPORT - UPLINK_OFPORT

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
