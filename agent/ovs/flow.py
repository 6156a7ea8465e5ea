"""Flows as small immutable values.

The reconciler computes the *desired* set of flows from state and diffs it against what it installed,
so a flow must be hashable and comparable: table, priority and match identify it on the switch (that is
OpenFlow's own identity for a strict modify/delete); actions, the feature (which part of the agent
owns it) and the policy rule it counts for (both carried in the cookie) are its content. Rendering to
os-ken messages and to ovs-ofctl text lives here too, so every consumer (controller, inspect API,
bench, docs) shows the same flow.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from enum import IntEnum
from functools import cache
from typing import Any

# Pseudo ports (OpenFlow 1.3 numbering) used by the pipeline.
OFPP_IN_PORT = 0xFFFFFFF8

# ct_state bits (nicira): what the CT_* constants below combine.
CT_NEW = 0x01
CT_EST = 0x02
CT_REL = 0x04
CT_RPL = 0x08
CT_INV = 0x10
CT_TRK = 0x20

_CT_NAMES = [(CT_NEW, "new"), (CT_EST, "est"), (CT_REL, "rel"), (CT_RPL, "rpl"), (CT_INV, "inv"),
             (CT_TRK, "trk")]


class Feature(IntEnum):
    """Which part of the agent owns a flow; it is carried in the cookie so flows can be told apart
    on the switch (ovs-ofctl dump-flows cookie=...) and counted per feature."""

    PIPELINE = 1  # table-miss and stage-to-stage defaults
    CLASSIFIER = 2
    SPOOF_GUARD = 3
    ARP_RESPONDER = 4
    CONNTRACK = 5
    POLICY = 6
    L3_FORWARDING = 7
    L2_FORWARDING = 8
    OUTPUT = 9
    EPG = 10
    QOS = 11
    SERVICE = 12
    DNS = 13
    HOST_ACCESS = 14
    BGP = 15  # L3 mode: the router port, routed frames from the uplink, learned routes


# Cookie layout: bits 48..63 round number, bits 32..47 feature id, bits 0..31 rule id (0: no rule).
COOKIE_ROUND_SHIFT = 48
COOKIE_FEATURE_SHIFT = 32
COOKIE_ROUND_MASK = 0xFFFF << COOKIE_ROUND_SHIFT
COOKIE_RULE_MASK = 0xFFFFFFFF


def make_cookie(round_: int, feature: Feature, rule: int = 0) -> int:
    """Cookie for a flow of *feature* (and policy *rule*) installed in *round_*; the round lets a
    restarted agent delete exactly the flows of the previous round after installing its own, the rule
    id lets inspect sum a rule's packets and bytes from the switch's flow statistics."""
    return (((round_ & 0xFFFF) << COOKIE_ROUND_SHIFT) | (int(feature) << COOKIE_FEATURE_SHIFT)
            | (rule & COOKIE_RULE_MASK))


def cookie_rule(cookie: int) -> int:
    return cookie & COOKIE_RULE_MASK


def cookie_round(cookie: int) -> int:
    return (cookie >> COOKIE_ROUND_SHIFT) & 0xFFFF


def cookie_feature(cookie: int) -> int:
    return (cookie >> COOKIE_FEATURE_SHIFT) & 0xFFFF


MatchValue = int | str | tuple[int, int]


@dataclass(frozen=True, slots=True)
class Match:
    """An OpenFlow match as sorted (field, value) pairs using os-ken OXM/NXM field names.

    Masked values are (value, mask) tuples; IPv4 prefixes are strings such as "10.1.0.0/16" and are
    turned into (address, netmask) when encoded.
    """

    fields: tuple[tuple[str, MatchValue], ...] = ()

    @classmethod
    def of(cls, **kwargs: MatchValue | None) -> Match:
        return cls(tuple(sorted((k, v) for k, v in kwargs.items() if v is not None)))

    def merged(self, other: Match) -> Match:
        """Union of two matches (used to combine rule clauses); conflicting values are a bug."""
        combined = dict(self.fields)
        for k, v in other.fields:
            if k in combined and combined[k] != v:
                raise ValueError(f"conflicting match on {k}: {combined[k]} vs {v}")
            combined[k] = v
        return Match(tuple(sorted(combined.items())))

    def as_kwargs(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, v in self.fields:
            if isinstance(v, str) and "/" in v:
                net = ipaddress.ip_network(v, strict=False)
                out[k] = (str(net.network_address), str(net.netmask))
            else:
                out[k] = v
        return out

    def text(self) -> str:
        return ",".join(_match_text(k, v) for k, v in self.fields)


# os-ken field name -> ovs-ofctl field name, where they differ.
_OFCTL_FIELD = {
    "eth_type": "dl_type",
    "eth_src": "dl_src",
    "eth_dst": "dl_dst",
    "ipv4_src": "nw_src",
    "ipv4_dst": "nw_dst",
    "ip_proto": "nw_proto",
    "tcp_dst": "tp_dst",
    "udp_dst": "tp_dst",
    "tunnel_id": "tun_id",
    "tun_ipv4_dst": "tun_dst",
    "icmpv4_type": "icmp_type",
    "nxm_in_port": "in_port",
}


def _ct_state_text(value: int, mask: int) -> str:
    return "".join(("+" if value & bit else "-") + name for bit, name in _CT_NAMES if mask & bit)


def _match_text(k: str, v: MatchValue) -> str:
    if k == "ct_state":
        value, mask = v if isinstance(v, tuple) else (v, 0xFF)
        return f"ct_state={_ct_state_text(value, mask)}"
    if k == "vlan_vid":
        value = v[0] if isinstance(v, tuple) else v
        return f"dl_vlan={int(value) & 0xFFF}" if value else "vlan_tci=0x0000/0x1fff"  # 0: untagged
    name = _OFCTL_FIELD.get(k, k)
    if isinstance(v, tuple):
        return f"{name}={v[0]:#x}/{v[1]:#x}"
    if isinstance(v, int) and k in ("eth_type", "tunnel_id"):
        return f"{name}={v:#x}"
    return f"{name}={v}"


# ---- actions -------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Output:
    port: int

    def text(self) -> str:
        return "IN_PORT" if self.port == OFPP_IN_PORT else f"output:{self.port}"

    def to_ofp(self, parser: Any) -> list[Any]:
        return [parser.OFPActionOutput(self.port, 0xFFFF)]


@dataclass(frozen=True, slots=True)
class OutputReg:
    """Output to the port held in a register (reg1 by convention): one output flow serves all ports."""

    reg: str

    def text(self) -> str:
        return f"output:{self.reg}"

    def to_ofp(self, parser: Any) -> list[Any]:
        from os_ken.ofproto import nicira_ext

        return [parser.NXActionOutputReg(ofs_nbits=nicira_ext.ofs_nbits(0, 31), src=self.reg, max_len=0)]


@dataclass(frozen=True, slots=True)
class SetField:
    name: str
    value: int | str

    def text(self) -> str:
        if self.name == "vlan_vid":
            return f"mod_vlan_vid:{int(self.value) & 0xFFF}"
        name = _OFCTL_FIELD.get(self.name, self.name)
        if name.startswith("reg"):
            return f"load:{int(self.value):#x}->NXM_NX_{name.upper()}[]"
        value = f"{self.value:#x}" if isinstance(self.value, int) and name == "tun_id" else self.value
        return f"set_field:{value}->{name}"

    def to_ofp(self, parser: Any) -> list[Any]:
        return [parser.OFPActionSetField(**{self.name: self.value})]


@dataclass(frozen=True, slots=True)
class Move:
    """Copy bits between fields, used by the ARP responder to turn a request into a reply."""

    src: str
    dst: str
    n_bits: int

    def text(self) -> str:
        return f"move:{_nxm_name(self.src)}[]->{_nxm_name(self.dst)}[]"

    def to_ofp(self, parser: Any) -> list[Any]:
        return [parser.NXActionRegMove(src_field=self.src, dst_field=self.dst, n_bits=self.n_bits)]


_NXM = {"eth_src": "NXM_OF_ETH_SRC", "eth_dst": "NXM_OF_ETH_DST", "arp_sha": "NXM_NX_ARP_SHA",
        "arp_tha": "NXM_NX_ARP_THA", "arp_spa": "NXM_OF_ARP_SPA", "arp_tpa": "NXM_OF_ARP_TPA", "reg9": "NXM_NX_REG9"}


def _nxm_name(field_name: str) -> str:
    return _NXM[field_name]


@dataclass(frozen=True, slots=True)
class PushVlan:
    def text(self) -> str:
        return "push_vlan:0x8100"

    def to_ofp(self, parser: Any) -> list[Any]:
        return [parser.OFPActionPushVlan(0x8100)]


@dataclass(frozen=True, slots=True)
class PopVlan:
    def text(self) -> str:
        return "strip_vlan"

    def to_ofp(self, parser: Any) -> list[Any]:
        return [parser.OFPActionPopVlan()]


@dataclass(frozen=True, slots=True)
class DecTtl:
    def text(self) -> str:
        return "dec_ttl"

    def to_ofp(self, parser: Any) -> list[Any]:
        return [parser.OFPActionDecNwTtl()]


@dataclass(frozen=True, slots=True)
class Conjunction:
    conj_id: int
    clause: int  # 1-based, as ovs-ofctl writes it
    n_clauses: int

    def text(self) -> str:
        return f"conjunction({self.conj_id},{self.clause}/{self.n_clauses})"

    def to_ofp(self, parser: Any) -> list[Any]:
        return [parser.NXActionConjunction(clause=self.clause - 1, n_clauses=self.n_clauses,
                                           id_=self.conj_id)]


@dataclass(frozen=True, slots=True)
class Ct:
    """Send the packet through conntrack in the zone held in *zone_reg* (the tenant id): tenants with
    overlapping subnets then never share connection state; or, with *zone_reg* empty, in zone *zone*
    (a tenant's service hairpin zone, agent/pipeline/service_lb.py).

    *nat* applies the connection's NAT on a lookup (a service connection's DNAT on its requests, the
    reverse on its replies); *nat_dst* (``ip:port``, with *commit*) sets up a new connection's DNAT,
    *nat_src* (``ip``, with *commit*) its SNAT (the source port kept unless taken);
    *mark* (with *commit*) stores that value in the connection's ct_mark."""

    zone_reg: str
    commit: bool = False
    table: int | None = None
    nat: bool = False
    nat_dst: str = ""
    mark: int = 0
    zone: int = 0
    nat_src: str = ""

    def text(self) -> str:
        parts = ["commit"] if self.commit else []
        if self.table is not None:
            parts.append(f"table={self.table}")
        parts.append(f"zone=NXM_NX_{self.zone_reg.upper()}[0..15]" if self.zone_reg else f"zone={self.zone}")
        if self.nat_dst:
            parts.append(f"nat(dst={self.nat_dst})")
        elif self.nat_src:
            parts.append(f"nat(src={self.nat_src})")
        elif self.nat:
            parts.append("nat")
        if self.mark:
            parts.append(f"exec(set_field:{self.mark:#x}->ct_mark)")
        return f"ct({','.join(parts)})"

    def to_ofp(self, parser: Any) -> list[Any]:
        from os_ken.ofproto import nicira_ext

        inner: list[Any] = []
        if self.nat_dst:
            ip, port = self.nat_dst.split(":")
            inner.append(_padded_nat(parser)(flags=_NX_NAT_F_DST, range_ipv4_min=ip, range_ipv4_max=ip,
                                             range_proto_min=int(port), range_proto_max=int(port)))
        elif self.nat_src:
            inner.append(_padded_nat(parser)(flags=_NX_NAT_F_SRC, range_ipv4_min=self.nat_src,
                                             range_ipv4_max=self.nat_src))
        elif self.nat:
            inner.append(_padded_nat(parser)(flags=0))
        if self.mark:
            inner.append(parser.OFPActionSetField(ct_mark=self.mark))
        zone = nicira_ext.ofs_nbits(0, 15) if self.zone_reg else self.zone  # else: the zone itself
        return [parser.NXActionCT(flags=1 if self.commit else 0, zone_src=self.zone_reg or None,
                                  zone_ofs_nbits=zone, recirc_table=0xFF if self.table is None else self.table,
                                  alg=0, actions=inner)]


_NX_NAT_F_SRC, _NX_NAT_F_DST = 1, 2  # nicira-ext.h NX_NAT_F_SRC, NX_NAT_F_DST


@cache
def _padded(action_class: Any) -> Any:
    """An os-ken Nicira action class with its padding written out. os-ken declares the padded length
    of NXActionNAT and NXActionLearn but writes only the unpadded body; OVS then refuses the message
    (bad length), or inside ``ct(...)`` the next action is read from the wrong offset."""

    class Padded(action_class):  # type: ignore[misc,valid-type]
        def serialize_body(self) -> bytearray:
            body = super().serialize_body()
            return body + b"\0" * (-(10 + len(body)) % 8)  # 10: the Nicira action header

    return Padded


def _padded_nat(parser: Any) -> Any:
    return _padded(parser.NXActionNAT)


@dataclass(frozen=True, slots=True)
class GroupAction:
    """Hand the packet to an OpenFlow group (a service port's select group picks a provider)."""

    group_id: int

    def text(self) -> str:
        return f"group:{self.group_id}"

    def to_ofp(self, parser: Any) -> list[Any]:
        return [parser.OFPActionGroup(self.group_id)]


@dataclass(frozen=True, slots=True)
class Bundle:
    """OVS's ``bundle`` action with the active_backup algorithm: output to the first *live* member of
    a bond. A member is live while OVS may enable it (carrier up and, with LACP, admitted by LACP), the
    same liveness the OVSDB bond port uses, so a failover needs no flow change. With *dst* it is
    ``bundle_load``: the chosen member is written to that register instead (input admission)."""

    members: tuple[int, ...]
    dst: str | None = None

    def text(self) -> str:
        members = ",".join(str(m) for m in self.members)
        if self.dst is not None:
            return f"bundle_load(eth_src,0,active_backup,ofport,NXM_NX_{self.dst.upper()}[],members:{members})"
        return f"bundle(eth_src,0,active_backup,ofport,members:{members})"

    def to_ofp(self, parser: Any) -> list[Any]:
        from os_ken.ofproto import nicira_ext

        common = {"algorithm": nicira_ext.NX_BD_ALG_ACTIVE_BACKUP, "fields": nicira_ext.NX_HASH_FIELDS_ETH_SRC,
                  "basis": 0, "slave_type": nicira_ext.NXM_OF_IN_PORT, "n_slaves": len(self.members),
                  "slaves": list(self.members)}
        if self.dst is not None:
            return [parser.NXActionBundleLoad(ofs_nbits=nicira_ext.ofs_nbits(0, 31), dst=self.dst, **common)]
        return [parser.NXActionBundle(ofs_nbits=0, dst=0, **common)]


@dataclass(frozen=True, slots=True)
class Multipath:
    """OVS's ``multipath``: a hash of the packet's addresses, protocol and TCP/UDP ports
    (symmetric_l3l4+udp) picks one of *n_links* (highest random weight) into register *dst*. A service's
    UDP ports use it: a select group's hash in OVS leaves UDP ports out (it would send every datagram of
    one client to one provider), and OpenFlow 1.3 cannot ask the group for other fields."""

    n_links: int
    dst: str

    def text(self) -> str:
        return f"multipath(symmetric_l3l4+udp,0,hrw,{self.n_links},0,NXM_NX_{self.dst.upper()}[0..15])"

    def to_ofp(self, parser: Any) -> list[Any]:
        from os_ken.ofproto import nicira_ext

        return [parser.NXActionMultipath(fields=_NX_HASH_FIELDS_SYMMETRIC_L3L4_UDP, basis=0,
                                         algorithm=nicira_ext.NX_MP_ALG_HRW, max_link=self.n_links - 1, arg=0,
                                         ofs_nbits=nicira_ext.ofs_nbits(0, 15), dst=self.dst)]


_NX_HASH_FIELDS_SYMMETRIC_L3L4_UDP = 3  # nicira-ext.h enum nx_hash_fields


@dataclass(frozen=True, slots=True)
class Resubmit:
    """``resubmit(,table)``: look the packet up in *table* and come back (the actions of the matching
    flow run, a goto in it is not followed). Service affinity uses it to consult its learned flows."""

    table: int

    def text(self) -> str:
        return f"resubmit(,{self.table})"

    def to_ofp(self, parser: Any) -> list[Any]:
        return [parser.NXActionResubmitTable(table_id=self.table)]


@dataclass(frozen=True, slots=True)
class LearnAffinity:
    """``learn``: a flow in *table* (timing out after *idle_timeout* s without packets) that matches
    this packet's tenant (reg5), source and destination address, protocol and destination port
    (*l4_dst*: ``tcp_dst`` or ``udp_dst``), and loads this packet's reg8 (the provider chosen) into
    reg8: the next connection from that client to that VIP port gets the same provider."""

    table: int
    idle_timeout: int
    ip_proto: int
    l4_dst: str
    priority: int
    cookie: int = 0

    def text(self) -> str:
        port = "NXM_OF_TCP_DST[]" if self.l4_dst == "tcp_dst" else "NXM_OF_UDP_DST[]"
        return (f"learn(table={self.table},idle_timeout={self.idle_timeout},priority={self.priority},"
                f"cookie={self.cookie:#x},eth_type=0x800,nw_proto={self.ip_proto},NXM_NX_REG5[],NXM_OF_IP_SRC[],"
                f"NXM_OF_IP_DST[],{port},load:NXM_NX_REG8[]->NXM_NX_REG8[])")

    def to_ofp(self, parser: Any) -> list[Any]:
        specs = [parser.NXFlowSpecMatch(src=0x800, dst=("eth_type_nxm", 0), n_bits=16),
                 parser.NXFlowSpecMatch(src=self.ip_proto, dst=("ip_proto_nxm", 0), n_bits=8),
                 parser.NXFlowSpecMatch(src=("reg5", 0), dst=("reg5", 0), n_bits=32),
                 parser.NXFlowSpecMatch(src=("ipv4_src_nxm", 0), dst=("ipv4_src_nxm", 0), n_bits=32),
                 parser.NXFlowSpecMatch(src=("ipv4_dst_nxm", 0), dst=("ipv4_dst_nxm", 0), n_bits=32),
                 parser.NXFlowSpecMatch(src=(f"{self.l4_dst}_nxm", 0), dst=(f"{self.l4_dst}_nxm", 0), n_bits=16),
                 parser.NXFlowSpecLoad(src=("reg8", 0), dst=("reg8", 0), n_bits=32)]
        return [_padded(parser.NXActionLearn)(table_id=self.table, specs=specs, idle_timeout=self.idle_timeout,
                                              priority=self.priority, cookie=self.cookie)]


Action = (Output | OutputReg | SetField | Move | PushVlan | PopVlan | DecTtl | Conjunction | Ct | Bundle | GroupAction
          | Multipath | Resubmit | LearnAffinity)


@dataclass(frozen=True, slots=True)
class Group:
    """An OpenFlow select group: the switch picks one bucket per new flow (OVS: dp_hash over the
    5-tuple for up to 64 hash values, so each connection is balanced on its own). Each bucket is a
    tuple of actions; no bucket drops."""

    group_id: int
    buckets: tuple[tuple[Action, ...], ...]

    def text(self) -> str:
        buckets = "".join(f",bucket=actions={','.join(a.text() for a in b)}" for b in self.buckets)
        return f"group_id={self.group_id},type=select{buckets}"


@dataclass(frozen=True, slots=True)
class Flow:
    """One OpenFlow rule. ``goto`` is the goto_table instruction (None: the packet stops here);
    no actions and no goto means drop. ``meter`` is the meter instruction (0: none)."""

    table: int
    priority: int
    match: Match
    actions: tuple[Action, ...] = ()
    goto: int | None = None
    feature: Feature = Feature.PIPELINE
    rule: int = 0  # policy rule id (low cookie bits): the flow counts for that rule
    meter: int = 0  # OpenFlow meter instruction (0: none): the packet passes the meter's bands first
    _key: tuple[int, int, Match] = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_key", (self.table, self.priority, self.match))

    @property
    def key(self) -> tuple[int, int, Match]:
        """OpenFlow identity: two flows with the same key replace each other on the switch."""
        return self._key

    def actions_text(self) -> str:
        parts = [f"meter:{self.meter}"] if self.meter else []
        parts += [a.text() for a in self.actions]
        if self.goto is not None:
            parts.append(f"goto_table:{self.goto}")
        return ",".join(parts) or "drop"

    def ofctl(self, cookie: int | None = None) -> str:
        """The flow in ovs-ofctl add-flow syntax (used by inspect, docs and the bench)."""
        head = f"table={self.table},priority={self.priority}"
        if cookie is not None:
            head = f"cookie={cookie:#x}," + head
        match = self.match.text()
        return f"{head}{',' + match if match else ''} actions={self.actions_text()}"
