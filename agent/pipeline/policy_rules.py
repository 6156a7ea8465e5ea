"""Contiv rules -> match rules: where Contiv's policy semantics are decided.

A policy attached to endpoint group E turns each of its rules into one match rule:

- ``in``: packets *to* local members of E (ingress table, destination EPG register = E), from the
  rule's from-group (source EPG register), from-network (source in the network's subnet) or
  from-IP/subnet; to-IP narrows the destination further.
- ``out``: packets *from* local members of E (egress table, source EPG register = E), to the rule's
  to-group, to-network or to-IP.
- protocol and port select the service; no protocol means any IP traffic.

Each field given narrows the rule (they are ANDed). A rule naming a group or network that does not
exist cannot match anything and is skipped. Policy is stateful: replies of allowed connections pass in
the conntrack stages, so "deny tcp" blocks new TCP connections, not answers to ones this side opened.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterator

from agent.ovs.flow import Match
from agent.pipeline.conjunction import MatchRule
from agent.pipeline.tables import ETH_IP, Reg, Table
from agent.state import DesiredState, EndpointGroup, Policy, Rule

LOG = logging.getLogger(__name__)


def _cidr(text: str) -> str:
    """Contiv IP fields: an address or address/len (host bits allowed)."""
    return str(ipaddress.IPv4Network(text, strict=False)) if "/" in text else text


def _service(rule: Rule) -> tuple[Match, ...]:
    proto = rule.protocol_number
    if proto is None:
        return ()
    if rule.port:
        port_field = "tcp_dst" if proto == 6 else "udp_dst"
        return (Match.of(eth_type=ETH_IP, ip_proto=proto, **{port_field: rule.port}),)
    return (Match.of(eth_type=ETH_IP, ip_proto=proto),)


def _peer(state: DesiredState, tenant: str, group: str, network: str, ip: str, epg_reg: str,
          ip_field: str) -> tuple[Match, ...] | None:
    """The peer side of a rule as one match, () for any, None when it names something unknown."""
    fields: dict[str, object] = {}
    if group:
        grp = state.group(tenant, group)
        if grp is None:
            return None
        fields[epg_reg] = grp.id
    if network:
        net = state.network(f"{tenant}:{network}")
        if net is None:
            return None
        fields[ip_field] = net.cidr
    if ip:
        fields[ip_field] = _cidr(ip)  # more specific than a network, when both are given
    if not fields:
        return ()
    if ip_field in fields:
        fields["eth_type"] = ETH_IP
    return (Match.of(**fields),)


def rule_to_match(state: DesiredState, grp: EndpointGroup, policy: Policy, rule: Rule) -> MatchRule | None:
    key = f"{policy.key}:{rule.rule_id}@{grp.key}"
    if rule.direction == "in":
        peer = _peer(state, grp.tenant, rule.from_group, rule.from_network, rule.from_ip,
                     Reg.SRC_EPG, "ipv4_src")
        own = {Reg.DST_EPG: grp.id, **({"ipv4_dst": _cidr(rule.to_ip), "eth_type": ETH_IP}
                                        if rule.to_ip else {})}
        table, src, dst = Table.INGRESS_POLICY, peer, (Match.of(**own),)
    else:
        peer = _peer(state, grp.tenant, rule.to_group, rule.to_network, rule.to_ip, Reg.DST_EPG, "ipv4_dst")
        table, src, dst = Table.EGRESS_POLICY, (Match.of(**{Reg.SRC_EPG: grp.id}),), peer
    if peer is None:
        LOG.warning("rule %s names an unknown group or network; it matches nothing", key)
        return None
    return MatchRule(key=key, table=table, priority=rule.priority, allow=rule.action == "allow",
                     src=src or (), dst=dst or (), service=_service(rule))


def match_rules(state: DesiredState, local_groups: set[int] | None = None) -> Iterator[MatchRule]:
    """Match rules of every group's policies (only groups with local endpoints when given: rules
    for groups that have no member here can never match on this host)."""
    for grp in sorted(state.groups, key=lambda g: g.key):
        if local_groups is not None and grp.id not in local_groups:
            continue
        for pol_name in grp.policies:
            policy = state.policy(grp.tenant, pol_name)
            if policy is None:
                LOG.warning("group %s refers to unknown policy %s", grp.key, pol_name)
                continue
            for rule in policy.rules:
                compiled = rule_to_match(state, grp, policy, rule)
                if compiled is not None:
                    yield compiled
