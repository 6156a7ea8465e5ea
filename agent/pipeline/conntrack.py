"""Conntrack state and commit stages.

Every IPv4 packet goes through conntrack once, in the zone of its tenant (so overlapping subnets of
two tenants never share connection state), with ``nat``: a service connection's requests get its
DNAT and its replies the reverse (agent/pipeline/service_lb.py); other connections have no NAT.
Invalid packets are dropped; established and related packets then skip both policy tables. A new
connection is committed only after ingress policy, so a connection exists in conntrack only if every
policy on its path allowed it; the exception is a service connection, which its group's bucket
commits with its DNAT (NAT needs the commit) and CT_COMMIT passes on: one that policy drops is never
answered, so it stays ``+new`` and policy judges each of its packets again.

In ACI mode nothing on the host needs connection state (the fabric enforces policy), and a frame
hairpinned by the leaf would pass conntrack twice; both stages only pass packets on.
"""

from __future__ import annotations

from collections.abc import Iterator

from agent.ovs.flow import CT_INV, CT_NEW, CT_TRK, Ct, Feature, Flow, Match
from agent.pipeline.tables import (
    CT_MARK_SERVICE,
    ETH_IP,
    PRIO_HIGH,
    PRIO_LOW,
    PRIO_MISS,
    PRIO_NORMAL,
    Reg,
    Table,
    next_table,
)


def _ct(bits: int) -> Match:
    return Match.of(eth_type=ETH_IP, ct_state=(bits | CT_TRK, bits | CT_TRK))


def state_flows(aci: bool = False) -> Iterator[Flow]:
    ip = Match.of(eth_type=ETH_IP)
    if aci:  # no conntrack: straight past the state table
        yield Flow(Table.CT_ZONE, PRIO_LOW, ip, goto=next_table(Table.CT_STATE))
    else:  # the lookup recirculates into the next table (CT_STATE)
        yield Flow(Table.CT_ZONE, PRIO_LOW, ip, (Ct(Reg.TENANT, table=next_table(Table.CT_ZONE), nat=True),),
                   feature=Feature.CONNTRACK)
    yield Flow(Table.CT_ZONE, PRIO_MISS, Match())
    yield Flow(Table.CT_STATE, PRIO_HIGH, _ct(CT_INV),
               feature=Feature.CONNTRACK)
    yield Flow(Table.CT_STATE, PRIO_MISS, Match(), goto=next_table(Table.CT_STATE))


def commit_flows(aci: bool = False) -> Iterator[Flow]:
    if not aci:
        service = _ct(CT_NEW).merged(Match.of(ct_mark=(CT_MARK_SERVICE, CT_MARK_SERVICE)))
        yield Flow(Table.CT_COMMIT, PRIO_NORMAL, service, goto=next_table(Table.CT_COMMIT), feature=Feature.CONNTRACK)
        yield Flow(Table.CT_COMMIT, PRIO_LOW, _ct(CT_NEW),
                   (Ct(Reg.TENANT, commit=True),), goto=next_table(Table.CT_COMMIT), feature=Feature.CONNTRACK)
    yield Flow(Table.CT_COMMIT, PRIO_MISS, Match(), goto=next_table(Table.CT_COMMIT))
