"""The leaf's policy and learnt endpoints as OpenFlow rules (``ovs-ofctl`` syntax).

Pipeline, one table per job::

    0  CLASSIFY  (port, VLAN) -> EPG, BD, VRF in registers; the tag is popped; unclassified: drop
    10 SOURCE    copy ARP and packets from unknown sources to the learning port (endpoint learning)
    20 FORWARD   pervasive gateway (ARP and ICMP echo answered), routing to the router MAC, L2 lookup,
                 flooding (ARP to the whole BD, other broadcast and unknown unicast within the EPG;
                 each copy goes through POLICY with its own destination EPG)
    21 ROUTE     destination IP in the VRF -> endpoint (MAC rewrite, TTL decrement)
    30 POLICY    ARP implicitly permitted, intra-EPG, unenforced VRF, preferred group, contract rules
    40 OUTPUT    destination binding -> push its VLAN, output on its port (hairpin allowed)

Registers: reg0 source EPG, reg1 BD, reg2 VRF, reg3 destination EPG, reg4 destination binding,
reg7 ingress binding. Contracts are stateless, as in ACI: a subject with ``revFltPorts=yes`` (the
default) adds the reverse rule (provider -> consumer, ports swapped; an ICMP echo's reply type), so
replies pass without conntrack. Rules are expanded per (source EPG, destination EPG, entry); a leaf
carries a few EPGs, so the flow count stays small.

Learnt copies leave on the learning port with the ingress binding number in the low 16 bits of the
destination MAC (``0e:00:00:00:HH:LL``): the learner reads (binding, source MAC, IP) from the frame.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from apic_mock.leaf.model import Binding, LeafPolicy, Match

T_CLASSIFY, T_SOURCE, T_FORWARD, T_ROUTE, T_POLICY, T_OUTPUT = 0, 10, 20, 21, 30, 40
LEARN_MAC_PREFIX = "0e:00:00:00"
BROADCAST_BIT = "01:00:00:00:00:00/01:00:00:00:00:00"


@dataclass(frozen=True)
class LearntEndpoint:
    """What forwarding needs of an endpoint the leaf learnt."""

    mac: str  # lower case
    ip: str | None
    port: str
    vlan: int


@dataclass
class Numbering:
    """Small integers for the objects the registers carry (stable for one policy)."""

    epg: dict[str, int]
    bd: dict[str, int]
    vrf: dict[str, int]
    binding: dict[Binding, int]

    @classmethod
    def of(cls, policy: LeafPolicy, bindings: list[Binding]) -> Numbering:
        def ids(keys: Iterable[str]) -> dict[str, int]:
            return {k: i for i, k in enumerate(sorted(keys), start=1)}

        return cls(ids(policy.epgs), ids(policy.bds), ids(policy.vrfs),
                   {b: i for i, b in enumerate(bindings, start=1)})

    def binding_by_id(self) -> dict[int, Binding]:
        return {i: b for b, i in self.binding.items()}


def port_ranges(lo: int, hi: int) -> list[str]:
    """A port range as value/mask matches (the fewest aligned blocks that cover it)."""
    out = []
    while lo <= hi:
        size = 1
        while lo % (size * 2) == 0 and lo + size * 2 - 1 <= hi and size < 65536:
            size *= 2
        out.append(str(lo) if size == 1 else f"0x{lo:04x}/0x{(0xFFFF - size + 1) & 0xFFFF:04x}")
        lo += size
    return out


def match_fields(m: Match) -> list[str]:
    """One OpenFlow match string per (port block) combination of a filter match."""
    base = []
    if m.ether:
        base.append(m.ether)
    if m.proto is not None:
        base.append(f"nw_proto={m.proto}")
    if m.icmp_type is not None:
        base.append(f"icmp_type={m.icmp_type}")
    combos = [base]
    for field, rng in (("tp_dst", m.dports), ("tp_src", m.sports)):
        if rng is not None:
            combos = [[*c, f"{field}={v}"] for c in combos for v in port_ranges(*rng)]
    return [",".join(c) for c in combos]


def _mac_hex(mac: str) -> str:
    return "0x" + mac.replace(":", "")


class FlowBuilder:
    """Builds the complete flow table; ``build()`` returns it sorted (stable text, cheap to compare)."""

    def __init__(self, policy: LeafPolicy, ofports: dict[str, int], learn_ofport: int,
                 endpoints: Iterable[LearntEndpoint] = ()) -> None:
        self.policy = policy
        self.ofports = ofports
        self.learn_ofport = learn_ofport
        self.bindings = [b for b in policy.bindings if b.port in ofports]
        self.ids = Numbering.of(policy, self.bindings)
        self.endpoints = [e for e in endpoints if policy.binding(e.port, e.vlan) in self.ids.binding]
        self.flows: list[str] = []

    def add(self, table: int, priority: int, match: str, actions: str) -> None:
        m = f",{match}" if match else ""
        self.flows.append(f"table={table},priority={priority}{m} actions={actions}")

    def build(self) -> list[str]:
        self._classify()
        self._source()
        self._forward()
        self._policy()
        self._output()
        return sorted(set(self.flows))

    # -- tables ----------------------------------------------------------------------------------
    def _classify(self) -> None:
        for b in self.bindings:
            epg = self.policy.epgs[b.epg]
            regs = (f"load:{self.ids.epg[b.epg]}->NXM_NX_REG0[],load:{self.ids.bd[epg.bd]}->NXM_NX_REG1[],"
                    f"load:{self.ids.vrf[epg.vrf]}->NXM_NX_REG2[],load:{self.ids.binding[b]}->NXM_NX_REG7[]")
            port = self.ofports[b.port]
            if b.vlan:
                self.add(T_CLASSIFY, 100, f"in_port={port},dl_vlan={b.vlan}",
                         f"pop_vlan,{regs},goto_table:{T_SOURCE}")
            else:
                self.add(T_CLASSIFY, 100, f"in_port={port},vlan_tci=0x0000/0x1fff", f"{regs},goto_table:{T_SOURCE}")
        self.add(T_CLASSIFY, 0, "", "drop")

    def _source(self) -> None:
        copy = (f"clone(mod_dl_dst:{LEARN_MAC_PREFIX}:00:00,move:NXM_NX_REG7[0..15]->NXM_OF_ETH_DST[0..15],"
                f"output:{self.learn_ofport})")
        self.add(T_SOURCE, 200, "arp", f"{copy},goto_table:{T_FORWARD}")
        for e in self.endpoints:
            bid = self.ids.binding[self._binding(e)]
            self.add(T_SOURCE, 100, f"reg7={bid},dl_src={e.mac}", f"goto_table:{T_FORWARD}")
        self.add(T_SOURCE, 0, "", f"{copy},goto_table:{T_FORWARD}")

    def _binding(self, e: LearntEndpoint) -> Binding:
        b = self.policy.binding(e.port, e.vlan)
        assert b is not None
        return b

    def _forward(self) -> None:
        to_ingress = f"move:NXM_NX_REG7[]->NXM_NX_REG4[],goto_table:{T_OUTPUT}"
        for bd_dn, bd in self.policy.bds.items():
            bd_id = self.ids.bd[bd_dn]
            for gw in {g.ip for g in bd.gateways}:
                self.add(T_FORWARD, 300, f"arp,reg1={bd_id},arp_op=1,arp_tpa={gw}",
                         "move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[],"
                         f"mod_dl_src:{bd.mac},load:2->NXM_OF_ARP_OP[],"
                         "move:NXM_NX_ARP_SHA[]->NXM_NX_ARP_THA[],move:NXM_OF_ARP_SPA[]->NXM_OF_ARP_TPA[],"
                         f"load:{_mac_hex(bd.mac)}->NXM_NX_ARP_SHA[],load:{int(gw)}->NXM_OF_ARP_SPA[],"
                         + to_ingress)
                self.add(T_FORWARD, 300, f"icmp,reg1={bd_id},nw_dst={gw},icmp_type=8",
                         f"move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[],mod_dl_src:{bd.mac},"
                         f"move:NXM_OF_IP_SRC[]->NXM_OF_IP_DST[],mod_nw_src:{gw},load:0->NXM_OF_ICMP_TYPE[],"
                         + to_ingress)
                self.add(T_FORWARD, 290, f"ip,reg1={bd_id},nw_dst={gw}", "drop")
            self.add(T_FORWARD, 200, f"ip,reg1={bd_id},dl_dst={bd.mac}", f"goto_table:{T_ROUTE}")
        for e in self.endpoints:
            b = self._binding(e)
            epg = self.policy.epgs[b.epg]
            bd = self.policy.bds[epg.bd]
            dest = f"load:{self.ids.epg[b.epg]}->NXM_NX_REG3[],load:{self.ids.binding[b]}->NXM_NX_REG4[]"
            self.add(T_FORWARD, 100, f"reg1={self.ids.bd[epg.bd]},dl_dst={e.mac}", f"{dest},goto_table:{T_POLICY}")
            if e.ip:
                self.add(T_ROUTE, 100, f"ip,reg2={self.ids.vrf[epg.vrf]},nw_dst={e.ip}",
                         f"mod_dl_src:{bd.mac},mod_dl_dst:{e.mac},dec_ttl,{dest},goto_table:{T_POLICY}")
        self.add(T_ROUTE, 0, "", "drop")
        self._flood()
        self.add(T_FORWARD, 0, "", "drop")

    def _flood(self) -> None:
        """ARP floods the BD (ACI permits ARP implicitly); other broadcast, multicast and unknown
        unicast stay within the EPG. Every copy is judged by POLICY with its own destination EPG, as
        a unicast frame is: no frame leaves a port without passing the policy table (an isolated
        EPG's members get no copies of each other's floods)."""
        for b in self.bindings:
            epg = self.policy.epgs[b.epg]
            bid = self.ids.binding[b]
            in_bd = [o for o in self.bindings if o != b and self.policy.epgs[o.epg].bd == epg.bd]
            same_epg = [] if epg.isolated else [o for o in in_bd if o.epg == b.epg]
            for priority, match, targets in ((60, "arp", in_bd), (50, "", same_epg)):
                acts = [f"clone(load:{self.ids.epg[o.epg]}->NXM_NX_REG3[],load:{self.ids.binding[o]}->NXM_NX_REG4[],"
                        f"resubmit(,{T_POLICY}))" for o in targets]
                self.add(T_FORWARD, priority, f"{match + ',' if match else ''}reg7={bid}",
                         ",".join(acts) or "drop")

    def _policy(self) -> None:
        allow = f"goto_table:{T_OUTPUT}"
        self.add(T_POLICY, 1000, "arp", allow)
        for dn, epg in self.policy.epgs.items():
            e = self.ids.epg[dn]
            self.add(T_POLICY, 900, f"reg0={e},reg3={e}", "drop" if epg.isolated else allow)
        for dn, vrf in self.policy.vrfs.items():
            if not vrf.enforced:
                self.add(T_POLICY, 800, f"reg2={self.ids.vrf[dn]}", allow)
        preferred = [d for d, e in self.policy.epgs.items() if e.preferred and self.policy.vrfs[e.vrf].preferred_group]
        for a in preferred:
            for b in preferred:
                if a != b and self.policy.epgs[a].vrf == self.policy.epgs[b].vrf:
                    self.add(T_POLICY, 700, f"reg0={self.ids.epg[a]},reg3={self.ids.epg[b]}", allow)
        for rule in self.policy.rules:
            src, dst = self.ids.epg[rule.src], self.ids.epg[rule.dst]
            for fields in match_fields(rule.match):
                match = f"{fields + ',' if fields else ''}reg0={src},reg3={dst}"
                self.add(T_POLICY, 600 if not rule.permit else 500, match, allow if rule.permit else "drop")
        self.add(T_POLICY, 0, "", "drop")

    def _output(self) -> None:
        for b in self.bindings:
            tag = f"push_vlan:0x8100,set_field:{0x1000 | b.vlan}->vlan_vid," if b.vlan else ""
            self.add(T_OUTPUT, 100, f"reg4={self.ids.binding[b]}",
                     f"{tag}load:0->NXM_OF_IN_PORT[],output:{self.ofports[b.port]}")
        self.add(T_OUTPUT, 0, "", "drop")


def build_flows(policy: LeafPolicy, ofports: dict[str, int], learn_ofport: int,
                endpoints: Iterable[LearntEndpoint] = ()) -> tuple[list[str], Numbering]:
    """All flows of the leaf, and the numbering they use (the learner maps binding ids back)."""
    builder = FlowBuilder(policy, ofports, learn_ofport, endpoints)
    return builder.build(), builder.ids
