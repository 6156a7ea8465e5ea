"""Ingress policy stage: ``in`` rules of the receiving endpoint's groups.

Checked on the host of the destination (packets leaving through the tunnel or uplink skip it; the
peer host checks them), after L2 forwarding has chosen a local port. Established and related packets
skip it; with no matching rule a packet is allowed. In ACI mode the stage is a pass-through.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from agent.ovs.flow import Flow, Match
from agent.pipeline.conjunction import MatchRule, compile_rules
from agent.pipeline.egress_policy import bypass_flows
from agent.pipeline.tables import PRIO_MISS, Reg, Table, next_table


def flows(rules: Sequence[MatchRule], aci: bool = False) -> Iterator[Flow]:
    if aci:  # the fabric enforces
        yield Flow(Table.INGRESS_POLICY, PRIO_MISS, Match(), goto=next_table(Table.INGRESS_POLICY))
        return
    yield from bypass_flows(Table.INGRESS_POLICY, Reg.DST_TYPE)
    yield from compile_rules([r for r in rules if r.table == Table.INGRESS_POLICY], next_table(Table.INGRESS_POLICY))
