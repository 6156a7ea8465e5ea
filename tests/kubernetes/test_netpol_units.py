"""NetworkPolicy without processes: parsing and refusals (contiv_api.k8s_netpol), label selectors,
ipBlock exceptions, port ranges, and the compiled match rules (agent.pipeline.network_policy)."""

from __future__ import annotations

import ipaddress
import json
import re
from typing import Any

import pytest

from agent.pipeline import build
from agent.pipeline.network_policy import match_rules, port_masks
from agent.pipeline.tables import Table
from agent.pipeline.view import DatapathView
from agent.state import DesiredState, Endpoint, Host, KubeObject, Network
from contiv_api.k8s_netpol import IpBlock, LabelSelector, NetworkPolicy, PolicyError, parse_manifest


def policy(spec: dict[str, Any], name: str = "p", namespace: str = "x") -> dict[str, Any]:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": name, "namespace": namespace}, "spec": spec}


def test_selectors() -> None:
    sel = LabelSelector.parse({"matchLabels": {"app": "web"},
                               "matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["db"]},
                                                    {"key": "team", "operator": "Exists"}]}, "s")
    assert sel.matches({"app": "web", "team": "a"})
    assert not sel.matches({"app": "web", "team": "a", "tier": "db"})
    assert not sel.matches({"app": "web"})
    assert LabelSelector.parse({}, "s").matches({})
    assert LabelSelector.parse({"matchExpressions": [{"key": "k", "operator": "DoesNotExist"}]}, "s").matches({})


def test_ip_block_except_is_cut_out() -> None:
    nets = IpBlock("10.0.0.0/24", ("10.0.0.5/32", "10.0.0.128/25")).networks()
    covered = {int(a) for n in nets for a in ipaddress.IPv4Network(n)}
    base = int(ipaddress.IPv4Address("10.0.0.0"))
    assert covered == {base + i for i in range(128)} - {base + 5}


@pytest.mark.parametrize(("low", "high"), [(80, 80), (80, 81), (1, 65535), (1000, 2047), (79, 1025)])
def test_port_masks_cover_exactly_the_range(low: int, high: int) -> None:
    covered = set()
    for entry in port_masks(low, high):
        value, mask = entry if isinstance(entry, tuple) else (entry, 0xFFFF)
        covered |= {p for p in range(65536) if p & mask == value}
    assert covered == set(range(low, high + 1))


def test_default_policy_types() -> None:
    assert NetworkPolicy.parse_spec("x", "p", {"podSelector": {}}).types == {"Ingress"}
    assert NetworkPolicy.parse_spec("x", "p", {"podSelector": {}, "egress": [{}]}).types == {"Ingress", "Egress"}


BAD = [
    ({"kind": "NetworkPolicy"}, "metadata is required"),
    (policy({}), "spec.podSelector is required"),
    (policy({"podSelector": {}, "policyTypes": ["Sideways"]}), "spec.policyTypes must be a list of Ingress, Egress"),
    (policy({"podSelector": {}, "ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.0/8",
                                                                    "except": ["11.0.0.0/16"]}}]}]}),
     "every except must be a strict subset"),
    (policy({"podSelector": {}, "ingress": [{"from": [{"ipBlock": {"cidr": "fd00::/64"}}]}]}), "IPv4 only"),
    (policy({"podSelector": {}, "ingress": [{"ports": [{"port": 70000}]}]}), "port must be 1-65535"),
    (policy({"podSelector": {}, "ingress": [{"ports": [{"port": 81, "endPort": 80}]}]}), "endPort"),
    (policy({"podSelector": {}, "ingress": [{"ports": [{"protocol": "ICMP"}]}]}), "protocol must be TCP, UDP or SCTP"),
    (policy({"podSelector": {"matchExpressions": [{"key": "a", "operator": "In"}]}}), "In needs values"),
    (policy({"podSelector": {"matchExpressions": 5}}), "matchExpressions must be a list"),
    (policy({"podSelector": {}}, name="Bad_Name"), "metadata.name must be a lowercase DNS name"),
    ({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}}, "unsupported object v1/Service"),
]


@pytest.mark.parametrize(("doc", "message"), BAD, ids=[b[1] for b in BAD])
def test_refused_manifests(doc: dict[str, Any], message: str) -> None:
    with pytest.raises(PolicyError, match=message.replace("(", r"\(")):
        parse_manifest(doc, "t")


# -- compiled rules -------------------------------------------------------------------------------


def _state(*kube: KubeObject) -> DesiredState:
    net = Network("t", "pods", "vxlan", "10.9.0.0/24", vni=5)
    eps = (Endpoint("xa", "t", "pods", "10.9.0.1", "h1", pod="x/a"),
           Endpoint("xb", "t", "pods", "10.9.0.2", "h1", pod="x/b"),
           Endpoint("ya", "t", "pods", "10.9.0.3", "h2", pod="y/a"))
    labels = tuple(KubeObject("k8sPod", "t", e.pod.split("/")[0], e.pod.split("/")[1], (("pod", e.pod[-1]),))
                   for e in eps)
    return DesiredState(networks=(net,), endpoints=eps, hosts=(Host("h1", "1.1.1.1"), Host("h2", "1.1.1.2")),
                        kube=labels + kube)


def _view(state: DesiredState) -> DatapathView:
    return DatapathView(state, "h1", {"t": 1}, {"xa": 16, "xb": 17}, has_tunnel=True)


def _np(spec: dict[str, Any], name: str = "p", namespace: str = "x") -> KubeObject:
    return KubeObject("k8sNetworkPolicy", "t", namespace, name, (), json.dumps(spec))


def test_isolation_and_allow_rules_for_local_selected_pods_only() -> None:
    spec = {"podSelector": {"matchLabels": {"pod": "a"}}, "policyTypes": ["Ingress"],
            "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "y"}}}],
                         "ports": [{"port": 80}]}]}
    rules = list(match_rules(_view(_state(_np(spec)))))
    isolate, allow = sorted(rules, key=lambda r: r.priority)
    assert (isolate.table, isolate.allow, [m.fields for m in isolate.dst]) == (
        Table.INGRESS_POLICY, False, [(("eth_type", 0x800), ("ipv4_dst", "10.9.0.1"), ("reg5", 1))])
    assert allow.allow
    assert [dict(m.fields)["ipv4_src"] for m in allow.src] == ["10.9.0.3"]  # y/a, on another host
    assert [dict(m.fields)["tcp_dst"] for m in allow.service] == [80]
    # the same policy selects nothing on h2 (y/a is not in namespace x)
    assert list(match_rules(DatapathView(_state(_np(spec)), "h2", {"t": 1}, {"ya": 16}))) == []


def test_rule_with_no_matching_peer_allows_nothing_but_isolation_stays() -> None:
    spec = {"podSelector": {}, "ingress": [{"from": [{"podSelector": {"matchLabels": {"pod": "zzz"}}}]}]}
    rules = list(match_rules(_view(_state(_np(spec)))))
    assert [(r.allow, r.priority) for r in rules] == [(False, 1)]


def test_named_port_only_rule_allows_nothing() -> None:
    spec = {"podSelector": {}, "ingress": [{"ports": [{"port": "http"}]}]}
    assert [r.allow for r in match_rules(_view(_state(_np(spec))))] == [False]


def test_policies_compile_into_the_pipeline() -> None:
    spec = {"podSelector": {}, "policyTypes": ["Ingress", "Egress"],
            "ingress": [{"from": [{"podSelector": {}}], "ports": [{"port": 80, "endPort": 81}]}],
            "egress": [{"to": [{"ipBlock": {"cidr": "10.9.0.0/24", "except": ["10.9.0.3/32"]}}]}]}
    flows = [f.ofctl() for f in build(_view(_state(_np(spec))))]
    ingress = [f for f in flows if f"table={int(Table.INGRESS_POLICY)}," in f]
    assert any("tp_dst=0x50/0xfffe" in f or "tcp_dst=0x50/0xfffe" in f for f in ingress), ingress
    egress = [f for f in flows if f"table={int(Table.EGRESS_POLICY)}," in f]
    allowed = [ipaddress.IPv4Network(m.group(1)) for f in egress if (m := re.search(r"nw_dst=([0-9./]+)", f))]
    assert len(allowed) == 8
    assert not any(ipaddress.IPv4Address("10.9.0.3") in net for net in allowed)  # the except
    assert any(ipaddress.IPv4Address("10.9.0.2") in net for net in allowed)


def test_state_from_netmaster_objects_carries_pods_and_kubernetes_objects() -> None:
    from agent.local_endpoints import LocalEndpoint
    from agent.netmaster_state import NmObject, build_state, with_last_known

    pod_labels = {"K8S_POD_NAMESPACE": "x", "K8S_POD_NAME": "a"}
    objects = [
        NmObject("network", "t:pods", {"tenantName": "t", "networkName": "pods", "encap": "vxlan",
                                       "subnet": "10.9.0.0/24"}, {"externalPktTag": 5}),
        NmObject("endpoint", "p1:eth0", {"endpointID": "p1:eth0", "tenantName": "t", "networkName": "pods",
                                         "host": "h2", "ipAddress": "10.9.0.1", "macAddress": "02:02:0a:09:00:01",
                                         "labels": pod_labels}),
        NmObject("k8sNetworkPolicy", "t:x:p", {"tenantName": "t", "namespace": "x", "name": "p",
                                               "spec": {"podSelector": {}}}),
        NmObject("k8sPod", "t:x:a", {"tenantName": "t", "namespace": "x", "name": "a", "labels": {"pod": "a"}}),
    ]
    state = build_state(objects, {}, "h1", 3)
    assert state.endpoint("p1:eth0").pod == "x/a"
    assert [(k.kind, k.labels, k.spec) for k in state.kube] == [
        ("k8sNetworkPolicy", (), '{"podSelector":{}}'), ("k8sPod", (("pod", "a"),), "")]
    # a local pod that netmaster does not list (a partition) keeps its identity, and so its policies
    local = {"p2:eth0": LocalEndpoint("p2:eth0", "t", "pods", ip="10.9.0.2", mac="02:02:0a:09:00:02",
                                      labels={"K8S_POD_NAMESPACE": "x", "K8S_POD_NAME": "b"})}
    merged, _ = with_last_known(objects, local, [], "h1")
    assert build_state(merged, local, "h1", 4).endpoint("p2:eth0").pod == "x/b"
