"""The OpenFlow pipeline: stages, each a pure function of a DatapathView.

``build`` returns the complete desired flow set; the reconciler diffs it against what is installed.
Tables and their order come from the framework (``tables.DECLARED``, ``framework.Pipeline``); see
docs/pipeline.md.
"""

from __future__ import annotations

from collections.abc import Mapping

from agent.ovs.flow import Flow, Group
from agent.pipeline import (
    arp_responder,
    bgp_routes,
    classifier,
    conntrack,
    dns_redirect,
    egress_policy,
    host_access,
    ingress_policy,
    l2_forwarding,
    l3_forwarding,
    network_policy,
    output,
    policy_rules,
    qos,
    service_lb,
    spoof_guard,
)
from agent.pipeline.conjunction import MatchRule
from agent.pipeline.tables import STAGES, Table
from agent.pipeline.view import DatapathView


def rules_of(view: DatapathView) -> list[MatchRule]:
    """The policy rules this host enforces: those of groups with local endpoints and the Kubernetes
    NetworkPolicies selecting local pods (none in ACI mode, where the fabric enforces policy and the
    policy stages only pass packets on)."""
    if view.aci:
        return []
    local_groups = {view.epg(ep) for ep, _ in view.local_endpoints if view.epg(ep)}
    return [*policy_rules.match_rules(view.state, local_groups), *network_policy.match_rules(view)]


def build(view: DatapathView) -> list[Flow]:
    """All flows for *view*, stage by stage. Duplicate keys are a bug in a stage and raise."""
    rules = rules_of(view)
    out: list[Flow] = []
    out += classifier.flows(view)
    out += host_access.flows(view)
    out += spoof_guard.flows(view)
    out += arp_responder.flows(view)
    out += service_lb.arp_flows(view)
    out += conntrack.state_flows(view.aci)
    out += service_lb.flows(view)
    out += dns_redirect.flows(view)
    out += egress_policy.flows(view, rules)
    out += l3_forwarding.flows(view)
    out += qos.flows(view)
    out += l2_forwarding.flows(view)
    out += ingress_policy.flows(rules, view.aci)
    out += conntrack.commit_flows(view.aci)
    out += output.flows(view)
    out += bgp_routes.flows(view)
    seen: dict[tuple, Flow] = {}
    for flow in out:
        other = seen.setdefault(flow.key, flow)
        if other is not flow and other != flow:
            raise ValueError(f"two flows with one key: {flow.ofctl()} / {other.ofctl()}")
    return list({f.key: f for f in out}.values())


def groups(view: DatapathView) -> Mapping[int, Group]:
    """The select groups the flows use: services' (ids 1..2^31-1) and L3 mode's ECMP (2^31 and up)."""
    return {**service_lb.groups(view), **bgp_routes.groups(view)}


def stage_of(table: int) -> str:
    for name, tables in STAGES:
        if table in tables:
            return name
    return "unknown"


def counts_by_stage(flows: list[Flow]) -> dict[str, dict[str, int]]:
    """Flow counts per stage and table, in pipeline order (for --dump-pipeline and inspect)."""
    out: dict[str, dict[str, int]] = {}
    for name, tables in STAGES:
        out[name] = {Table(t).name: sum(1 for f in flows if f.table == t) for t in tables}
    return out
