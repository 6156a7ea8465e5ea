"""Kubernetes NetworkPolicy -> match rules of the two policy stages (the tables Contiv's rules use).

Semantics (networking.k8s.io/v1): a pod that some policy of type Ingress selects is isolated for
ingress, and then admits only what a rule of one of those policies allows (their union); egress
likewise. Replies of allowed connections pass in the conntrack stages, as for Contiv's rules.

Translation, per policy and per direction, for the selected pods that are local:

- isolation: a deny at priority :data:`ISOLATE` matching the selected pods' addresses (destination
  for ingress, source for egress) in the tenant's VRF;
- each rule: an allow at :data:`ALLOW` with three dimensions: the selected pods, the peers (the
  addresses of the pods its selectors pick, and ipBlocks as prefixes, their ``except`` already cut
  out), and the ports (a range as masked port matches). These are address and port sets: the
  conjunction compiler (``conjunction.py``) gives a rule N+M+P+1 flows instead of N*M*P.

Every allow is above every isolation deny, and allows never contradict each other, so the union
holds whatever order OVS picks among them. A rule whose peers or ports resolve to nothing (no pod
matches yet; only named ports) allows nothing and is left out, while the isolation stays. A pod is
known by the labels ``K8S_POD_NAMESPACE``/``K8S_POD_NAME`` that the CNI plugin recorded on its
endpoint; its labels and its namespace's come from the Pod and Namespace objects netmaster holds.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache

from agent.ovs.flow import Match
from agent.pipeline.conjunction import MatchRule
from agent.pipeline.tables import ETH_IP, Reg, Table
from agent.pipeline.view import DatapathView
from agent.state import Endpoint, KubeObject
from contiv_api.k8s_netpol import (
    KIND_NAMESPACE,
    KIND_POD,
    KIND_POLICY,
    NAMESPACE_NAME_LABEL,
    PROTOCOLS,
    NetworkPolicy,
    Peer,
    PolicyError,
    PortSpec,
    Rule,
)

LOG = logging.getLogger(__name__)
ISOLATE, ALLOW = 1, 2  # rule priorities (Contiv's 1-100 scale)
_PORT_FIELDS = {6: "tcp_dst", 17: "udp_dst", 132: "sctp_dst"}


@lru_cache(maxsize=1024)
def parsed(obj: KubeObject) -> NetworkPolicy | None:
    try:
        return NetworkPolicy.parse_spec(obj.namespace, obj.name, json.loads(obj.spec))
    except (PolicyError, ValueError) as exc:  # netmaster refuses these; a stale or foreign store may not
        LOG.warning("ignoring NetworkPolicy %s/%s: %s", obj.namespace, obj.name, exc)
        return None


@dataclass(frozen=True)
class Pod:
    endpoint: Endpoint
    namespace: str
    labels: Mapping[str, str]


class TenantPods:
    """A tenant's pods with their labels, and its namespaces' labels."""

    def __init__(self, tenant: str, endpoints: list[Endpoint], kube: tuple[KubeObject, ...]) -> None:
        pod_labels = {(o.namespace, o.name): dict(o.labels) for o in kube if o.kind == KIND_POD and o.tenant == tenant}
        self.namespace_labels = {o.namespace: dict(o.labels) for o in kube
                                 if o.kind == KIND_NAMESPACE and o.tenant == tenant}
        self.pods = []
        for ep in endpoints:
            if ep.tenant == tenant and ep.pod:
                namespace, _, name = ep.pod.partition("/")
                self.pods.append(Pod(ep, namespace, pod_labels.get((namespace, name), {})))

    def namespace(self, name: str) -> dict[str, str]:
        return {**self.namespace_labels.get(name, {}), NAMESPACE_NAME_LABEL: name}

    def peer_addresses(self, peer: Peer, policy_namespace: str) -> list[str]:
        if peer.ip_block is not None:
            return list(peer.ip_block.networks())
        out = []
        for pod in self.pods:
            in_scope = (peer.namespaces.matches(self.namespace(pod.namespace)) if peer.namespaces is not None
                        else pod.namespace == policy_namespace)
            if in_scope and (peer.pods is None or peer.pods.matches(pod.labels)):
                out.append(pod.endpoint.ip)
        return out


def _ports(specs: tuple[PortSpec, ...]) -> tuple[Match, ...] | None:
    """Port matches; () for every port, None when nothing can match (only named ports)."""
    if not specs:
        return ()
    out: list[Match] = []
    for spec in specs:
        proto = PROTOCOLS[spec.protocol]
        ranges = spec.ranges()
        if ranges is None:
            continue
        if not ranges:
            out.append(Match.of(eth_type=ETH_IP, ip_proto=proto))
        for low, high in ranges:
            out += [Match.of(eth_type=ETH_IP, ip_proto=proto, **{_PORT_FIELDS[proto]: value})
                    for value in port_masks(low, high)]
    return tuple(dict.fromkeys(out)) or None


def port_masks(low: int, high: int) -> list[int | tuple[int, int]]:
    """A port range as the fewest (value, mask) matches (a single port stays a plain value)."""
    out: list[int | tuple[int, int]] = []
    while low <= high:
        size = low & -low if low else 1 << 16
        while size > high - low + 1:
            size >>= 1
        out.append(low if size == 1 else (low, 0xFFFF & ~(size - 1)))
        low += size
    return out


def _peers(rule: Rule, pods: TenantPods, namespace: str, field: str, vrf: int) -> tuple[Match, ...] | None:
    """Peer address matches; () for any peer, None when no peer exists (yet)."""
    if not rule.peers:
        return ()
    addresses = sorted({a for peer in rule.peers for a in pods.peer_addresses(peer, namespace)})
    if not addresses:
        return None
    return tuple(Match.of(eth_type=ETH_IP, **{field: a}) for a in addresses)


def match_rules(view: DatapathView) -> Iterator[MatchRule]:
    state = view.state
    policies = [o for o in state.kube if o.kind == KIND_POLICY]
    if not policies:
        return
    local = {ep.id for ep, _ in view.local_endpoints}
    endpoints = list(view.all_endpoints())
    tenants: dict[str, TenantPods] = {}
    for obj in policies:
        policy = parsed(obj)
        if policy is None:
            continue
        pods = tenants.get(obj.tenant) or tenants.setdefault(obj.tenant, TenantPods(obj.tenant, endpoints, state.kube))
        selected = sorted(p.endpoint.ip for p in pods.pods if p.endpoint.id in local and p.namespace == obj.namespace
                          and policy.pod_selector.matches(p.labels))
        if not selected:
            continue
        vrf = view.vrf(obj.tenant)
        for direction, table, own_field, peer_field, rules in (
                ("Ingress", Table.INGRESS_POLICY, "ipv4_dst", "ipv4_src", policy.ingress),
                ("Egress", Table.EGRESS_POLICY, "ipv4_src", "ipv4_dst", policy.egress)):
            if direction not in policy.types:
                continue
            own = tuple(Match.of(eth_type=ETH_IP, **{own_field: ip, Reg.TENANT: vrf}) for ip in selected)
            key = f"k8s:{obj.tenant}:{obj.namespace}:{obj.name}:{direction.lower()}"
            yield _oriented(MatchRule(key=f"{key}:isolate", table=table, priority=ISOLATE, allow=False), own,
                            (), direction)
            for i, rule in enumerate(rules):
                peers, ports = _peers(rule, pods, obj.namespace, peer_field, vrf), _ports(rule.ports)
                if peers is None or ports is None:
                    continue
                yield _oriented(MatchRule(key=f"{key}:{i}", table=table, priority=ALLOW, allow=True, service=ports),
                                own, peers, direction)


def _oriented(rule: MatchRule, own: tuple[Match, ...], peers: tuple[Match, ...], direction: str) -> MatchRule:
    """Put the selected pods and the peers on the destination and source sides of *direction*."""
    src, dst = (peers, own) if direction == "Ingress" else (own, peers)
    return MatchRule(rule.key, rule.table, rule.priority, rule.allow, src, dst, rule.service)
