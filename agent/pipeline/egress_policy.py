"""Egress policy stage: destination EPG lookup, then ``out`` rules of the sender's groups.

Only packets from local endpoints are checked here (the sending host enforces egress); established
and related packets skip the table. With no matching rule a packet is allowed: an EPG without policy
allows everything. In ACI mode the stage is a pass-through: the fabric enforces the contracts.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from functools import lru_cache

from agent.ovs.flow import CT_EST, CT_REL, CT_TRK, Feature, Flow, Match, SetField
from agent.pipeline.conjunction import MatchRule, compile_rules
from agent.pipeline.flow_cache import FLOW_CACHE_SIZE
from agent.pipeline.tables import (
    ETH_IP,
    PRIO_BYPASS,
    PRIO_MISS,
    PRIO_NORMAL,
    PRIO_SKIP,
    PortType,
    Reg,
    Table,
    next_table,
)
from agent.pipeline.view import DatapathView


@lru_cache(maxsize=FLOW_CACHE_SIZE)
def dst_epg_flow(ip: str, vrf: int, epg: int) -> Flow:
    return Flow(Table.DST_EPG, PRIO_NORMAL, Match.of(eth_type=ETH_IP, ipv4_dst=ip, reg5=vrf),
                (SetField(Reg.DST_EPG, epg),), goto=next_table(Table.DST_EPG), feature=Feature.EPG)


def bypass_flows(table: Table, skip_reg: str) -> Iterator[Flow]:
    """Shared by both policy tables: established/related connections and traffic the table does
    not apply to (by port type in *skip_reg*) go straight on."""
    after = next_table(table)
    for state in (CT_EST, CT_REL):
        yield Flow(table, PRIO_BYPASS, Match.of(eth_type=ETH_IP, ct_state=(state | CT_TRK, state | CT_TRK)),
                   goto=after, feature=Feature.POLICY)
    for port_type in (PortType.TUNNEL, PortType.UPLINK):
        yield Flow(table, PRIO_SKIP, Match.of(**{skip_reg: int(port_type)}), goto=after,
                   feature=Feature.POLICY)
    yield Flow(table, PRIO_MISS, Match(), goto=after)


def flows(view: DatapathView, rules: Sequence[MatchRule]) -> Iterator[Flow]:
    if view.aci:  # the fabric enforces: both tables only pass packets on
        yield Flow(Table.DST_EPG, PRIO_MISS, Match(), goto=next_table(Table.DST_EPG))
        yield Flow(Table.EGRESS_POLICY, PRIO_MISS, Match(), goto=next_table(Table.EGRESS_POLICY))
        return
    for ep in view.all_endpoints():
        if view.epg(ep):
            yield dst_epg_flow(ep.ip, view.vrf(ep.tenant), view.epg(ep))
    yield Flow(Table.DST_EPG, PRIO_MISS, Match(), goto=next_table(Table.DST_EPG))
    yield from bypass_flows(Table.EGRESS_POLICY, Reg.SRC_TYPE)
    yield from compile_rules([r for r in rules if r.table == Table.EGRESS_POLICY], next_table(Table.EGRESS_POLICY))
