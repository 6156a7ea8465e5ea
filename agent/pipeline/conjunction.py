"""Compile match rules into flows, with conjunctive matches when a rule covers sets.

A rule is up to three dimensions: sources, destinations, services, each a set of alternative matches
(an empty dimension matches anything). Matching every combination with its own flow costs N*M*P
flows; OVS conjunctions cost one flow per element (``conjunction(id, k/n)``) plus one flow that matches
``conj_id`` and carries the verdict: N+M+P+1. Small rules (a Contiv rule is single-valued) stay plain
flows, which read better in a dump. Flows that several rules share (same table, priority and match)
are merged into one flow carrying all their conjunction actions, as OVS requires.
"""

from __future__ import annotations

import itertools
import logging
import math
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from agent.ovs.flow import Conjunction, Feature, Flow, Match
from agent.pipeline.tables import ETH_IP, PRIO_RULE_BASE, Table

LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class MatchRule:
    key: str  # stable identity (policy, rule, applied group): conj ids derive from it
    table: Table
    priority: int  # 1..100, higher wins
    allow: bool
    src: tuple[Match, ...] = ()
    dst: tuple[Match, ...] = ()
    service: tuple[Match, ...] = ()


def flow_priority(rule: MatchRule) -> int:
    """Contiv priority 1..100, higher wins; at equal priority deny wins over allow."""
    return PRIO_RULE_BASE + 2 * rule.priority + (0 if rule.allow else 1)


def rule_ids(rules: Sequence[MatchRule]) -> dict[str, int]:
    """Stable ids from the rule keys (so a restarted agent produces identical flows); collisions are
    resolved by probing in key order. The id is both the rule's conjunction id and the rule part of
    its verdict flows' cookie (inspect sums packets and bytes per rule by it)."""
    used: set[int] = set()
    out = {}
    for key in sorted({r.key for r in rules}):
        cid = zlib.crc32(key.encode()) & 0x7FFFFFFF or 1
        while cid in used:
            cid = (cid + 1) & 0x7FFFFFFF or 1
        used.add(cid)
        out[key] = cid
    return out


def _verdict(rule: MatchRule, next_table: Table, match: Match, prio: int, rule_id: int) -> Flow:
    """The flow that decides: every packet the rule matches is counted on it (clause flows of a
    conjunction only mark, they may be shared by rules)."""
    return Flow(rule.table, prio, match, goto=next_table if rule.allow else None, feature=Feature.POLICY,
                rule=rule_id)


def _rule_flows(rule: MatchRule, next_table: Table, conj_id: int) -> Iterable[Flow]:
    base = Match.of(eth_type=ETH_IP)
    prio = flow_priority(rule)
    dims = [d for d in (rule.src, rule.dst, rule.service) if d]
    sizes = [len(d) for d in dims]
    if len(dims) < 2 or math.prod(sizes) <= sum(sizes) + 1:
        for combo in itertools.product(*dims):
            match = base
            for part in combo:
                match = match.merged(part)
            yield _verdict(rule, next_table, match, prio, conj_id)
        return
    for k, dim in enumerate(dims, start=1):
        for part in dim:
            yield Flow(rule.table, prio, base.merged(part), (Conjunction(conj_id, k, len(dims)),),
                       feature=Feature.POLICY)
    yield _verdict(rule, next_table, Match.of(conj_id=conj_id), prio, conj_id)


def compile_rules(rules: Sequence[MatchRule], next_table: Table) -> list[Flow]:
    ids = rule_ids(rules)
    by_key: dict[tuple, Flow] = {}
    for rule in sorted(rules, key=lambda r: r.key):
        for flow in _rule_flows(rule, next_table, ids[rule.key]):
            old = by_key.get(flow.key)
            if old is None:
                by_key[flow.key] = flow
            elif (old.actions, old.goto) == (flow.actions, flow.goto):
                pass  # two rules with one flow and one verdict: the first (in key order) counts it
            elif _only_conjunctions(old) and _only_conjunctions(flow):
                acts = tuple(sorted(set(old.actions) | set(flow.actions),
                                   key=lambda a: (a.conj_id, a.clause)))
                by_key[flow.key] = Flow(old.table, old.priority, old.match, acts, feature=Feature.POLICY)
            else:
                # Same match and priority, different verdicts: two rules say contradictory things at
                # the same precedence. Keep the first (in key order) and say so.
                LOG.warning("policy conflict at %s, keeping %s", flow.match.text(), old.actions_text())
    return list(by_key.values())


def _only_conjunctions(flow: Flow) -> bool:
    return bool(flow.actions) and flow.goto is None and all(isinstance(a, Conjunction) for a in flow.actions)
