"""Kubernetes NetworkPolicy (networking.k8s.io/v1), label selectors and the pod and namespace labels
they select on: parsed and checked the same way by netmaster (which refuses what does not parse) and by
the agents (which compile it into their policy stages).

Only what NetworkPolicy semantics need is kept: a policy's pod selector, policy types and rules (peers
and ports); a namespace's and a pod's labels. Everything here is frozen and hashable, so a compiled
form can be cached per object.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

API_VERSION = "networking.k8s.io/v1"
# The kinds netmaster stores (object kind in its state, as agents see them in the watch stream).
KIND_POLICY = "k8sNetworkPolicy"
KIND_NAMESPACE = "k8sNamespace"
KIND_POD = "k8sPod"
# Kubernetes labels every namespace with its own name (since 1.21); selectors use it.
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
# Contiv's pod annotation naming a pod's tenant: the CNI plugin puts the pod's endpoint there, and the
# Kubernetes adapter sends the pod's labels there (both ends must read it alike).
POD_TENANT_ANNOTATION = "io.contiv.tenant"
PROTOCOLS = {"TCP": 6, "UDP": 17, "SCTP": 132}
_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")


class PolicyError(ValueError):
    """An object that is not valid NetworkPolicy (or Namespace, Pod); the message says where."""


def _labels(value: Any, where: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise PolicyError(f"{where} must be an object of strings")
    return dict(value)


@dataclass(frozen=True)
class Requirement:
    key: str
    operator: str
    values: frozenset[str] = frozenset()

    def matches(self, labels: Mapping[str, str]) -> bool:
        if self.operator == "In":
            return labels.get(self.key) in self.values
        if self.operator == "NotIn":
            return labels.get(self.key) not in self.values
        if self.operator == "Exists":
            return self.key in labels
        return self.key not in labels


@dataclass(frozen=True)
class LabelSelector:
    """A Kubernetes label selector: every requirement must hold; an empty selector selects all."""

    requirements: tuple[Requirement, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(r.matches(labels) for r in self.requirements)

    @classmethod
    def parse(cls, raw: Any, where: str) -> LabelSelector:
        if raw is None:
            return cls()
        if not isinstance(raw, dict) or set(raw) - {"matchLabels", "matchExpressions"}:
            raise PolicyError(f"{where} must be a label selector (matchLabels, matchExpressions)")
        reqs = [Requirement(k, "In", frozenset([v])) for k, v in
                sorted(_labels(raw.get("matchLabels"), f"{where}.matchLabels").items())]
        exprs = raw.get("matchExpressions") or []
        if not isinstance(exprs, list):
            raise PolicyError(f"{where}.matchExpressions must be a list")
        for i, expr in enumerate(exprs):
            at = f"{where}.matchExpressions[{i}]"
            if not isinstance(expr, dict) or not isinstance(expr.get("key"), str) or not expr["key"]:
                raise PolicyError(f"{at} needs a key")
            op, values = expr.get("operator"), expr.get("values") or []
            if op not in _OPERATORS:
                raise PolicyError(f"{at}.operator must be one of {', '.join(_OPERATORS)}")
            if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
                raise PolicyError(f"{at}.values must be a list of strings")
            if (op in ("In", "NotIn")) != bool(values):
                raise PolicyError(f"{at}: {op} {'needs' if op in ('In', 'NotIn') else 'takes no'} values")
            reqs.append(Requirement(expr["key"], op, frozenset(values)))
        return cls(tuple(reqs))


@dataclass(frozen=True)
class IpBlock:
    cidr: str
    excepts: tuple[str, ...] = ()

    def networks(self) -> tuple[str, ...]:
        """The block without its exceptions, as disjoint prefixes (allow rules are unions, so an
        exception cannot be a higher-priority deny: it would also deny what another rule allows)."""
        nets = [ipaddress.IPv4Network(self.cidr)]
        for exc in self.excepts:
            cut = ipaddress.IPv4Network(exc)
            nets = [piece for net in nets for piece in
                    ((net,) if not cut.subnet_of(net) else tuple(net.address_exclude(cut)))
                    if not piece.subnet_of(cut)]
        return tuple(str(n) for n in sorted(nets))


@dataclass(frozen=True)
class Peer:
    """One ``from``/``to`` entry: pods (podSelector, in the policy's namespace unless a
    namespaceSelector is given too), all pods of some namespaces, or an ipBlock."""

    pods: LabelSelector | None = None
    namespaces: LabelSelector | None = None
    ip_block: IpBlock | None = None

    @classmethod
    def parse(cls, raw: Any, where: str) -> Peer:
        if not isinstance(raw, dict) or set(raw) - {"podSelector", "namespaceSelector", "ipBlock"} or not raw:
            raise PolicyError(f"{where} must have podSelector, namespaceSelector or ipBlock")
        if "ipBlock" in raw:
            if len(raw) > 1:
                raise PolicyError(f"{where}: ipBlock cannot be combined with selectors")
            block = raw["ipBlock"]
            if not isinstance(block, dict) or not isinstance(block.get("cidr"), str):
                raise PolicyError(f"{where}.ipBlock needs a cidr")
            raw_excepts = block.get("except") or []
            if set(block) - {"cidr", "except"} or not isinstance(raw_excepts, list) \
                    or not all(isinstance(e, str) for e in raw_excepts):
                raise PolicyError(f"{where}.ipBlock must have a cidr and a list of except strings")
            try:
                cidr = ipaddress.IPv4Network(block["cidr"], strict=False)
                excepts = tuple(ipaddress.IPv4Network(e, strict=False) for e in raw_excepts)
            except (ValueError, TypeError) as exc:
                raise PolicyError(f"{where}.ipBlock: {exc} (IPv4 only)") from None
            if not all(e.subnet_of(cidr) and e != cidr for e in excepts):
                raise PolicyError(f"{where}.ipBlock: every except must be a strict subset of the cidr")
            return cls(ip_block=IpBlock(str(cidr), tuple(str(e) for e in excepts)))
        pods = LabelSelector.parse(raw["podSelector"], f"{where}.podSelector") if "podSelector" in raw else None
        nss = (LabelSelector.parse(raw["namespaceSelector"], f"{where}.namespaceSelector")
               if "namespaceSelector" in raw else None)
        return cls(pods=pods, namespaces=nss)


@dataclass(frozen=True)
class PortSpec:
    protocol: str = "TCP"
    port: int | str | None = None  # None: every port; a string: a named port
    end_port: int | None = None

    @classmethod
    def parse(cls, raw: Any, where: str) -> PortSpec:
        if not isinstance(raw, dict) or set(raw) - {"protocol", "port", "endPort"}:
            raise PolicyError(f"{where} must have protocol, port, endPort")
        proto = raw.get("protocol") or "TCP"
        if proto not in PROTOCOLS:
            raise PolicyError(f"{where}.protocol must be TCP, UDP or SCTP")
        port, end = raw.get("port"), raw.get("endPort")
        if isinstance(port, bool) or not (port is None or (isinstance(port, str) and port)
                                          or (isinstance(port, int) and 1 <= port <= 65535)):
            raise PolicyError(f"{where}.port must be 1-65535 or a port name")
        if end is not None and (not isinstance(port, int) or isinstance(end, bool) or not isinstance(end, int)
                                or not port <= end <= 65535):
            raise PolicyError(f"{where}.endPort needs a numeric port and must be port-65535")
        return cls(proto, port, end)

    def ranges(self) -> tuple[tuple[int, int], ...] | None:
        """Port ranges this entry covers; () for every port, None for a named port (a port name
        resolves against the pods' container ports, which the network does not know: nothing)."""
        if self.port is None:
            return ()
        if isinstance(self.port, str):
            return None
        return ((self.port, self.end_port or self.port),)


@dataclass(frozen=True)
class Rule:
    """An ingress or egress rule: *peers* () means every peer, *ports* () every port."""

    peers: tuple[Peer, ...] = ()
    ports: tuple[PortSpec, ...] = ()


@dataclass(frozen=True)
class NetworkPolicy:
    namespace: str
    name: str
    pod_selector: LabelSelector
    types: frozenset[str]
    ingress: tuple[Rule, ...] = ()
    egress: tuple[Rule, ...] = ()

    @classmethod
    def parse_spec(cls, namespace: str, name: str, spec: Any) -> NetworkPolicy:
        if not isinstance(spec, dict):
            raise PolicyError("spec must be an object")
        unknown = set(spec) - {"podSelector", "policyTypes", "ingress", "egress"}
        if unknown:
            raise PolicyError(f"spec: unknown field(s) {', '.join(sorted(unknown))}")
        if "podSelector" not in spec:
            raise PolicyError("spec.podSelector is required (use {} for every pod of the namespace)")
        selector = LabelSelector.parse(spec["podSelector"] or {}, "spec.podSelector")
        types = spec.get("policyTypes")
        if types is None:  # Kubernetes' default: Ingress always, Egress when there are egress rules
            types = ["Ingress", *(["Egress"] if spec.get("egress") else [])]
        if not isinstance(types, list) or not types or not all(t in ("Ingress", "Egress") for t in types):
            raise PolicyError("spec.policyTypes must be a list of Ingress, Egress")
        rules = {}
        for direction, peer_key in (("ingress", "from"), ("egress", "to")):
            raw_rules = spec.get(direction) or []
            if not isinstance(raw_rules, list):
                raise PolicyError(f"spec.{direction} must be a list")
            parsed = []
            for i, raw in enumerate(raw_rules):
                at = f"spec.{direction}[{i}]"
                if raw is None:
                    raw = {}
                if not isinstance(raw, dict) or set(raw) - {peer_key, "ports"}:
                    raise PolicyError(f"{at} must have only {peer_key} and ports")
                peers, ports = raw.get(peer_key) or [], raw.get("ports") or []
                if not isinstance(peers, list) or not isinstance(ports, list):
                    raise PolicyError(f"{at}.{peer_key} and {at}.ports must be lists")
                parsed.append(Rule(tuple(Peer.parse(p, f"{at}.{peer_key}[{j}]") for j, p in enumerate(peers)),
                                   tuple(PortSpec.parse(p, f"{at}.ports[{j}]") for j, p in enumerate(ports))))
            rules[direction] = tuple(parsed)
        return cls(namespace, name, selector, frozenset(types), rules["ingress"], rules["egress"])


def object_key(tenant: str, namespace: str, name: str = "") -> str:
    """netmaster's key of a Kubernetes object: ``tenant:namespace:name`` (``tenant:namespace`` for a
    namespace)."""
    return ":".join(p for p in (tenant, namespace, name) if p)


_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789-.")


def _dns_name(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value or len(value) > 253 or set(value) - _NAME_CHARS \
            or not value[0].isalnum() or not value[-1].isalnum():
        raise PolicyError(f"{where} must be a lowercase DNS name")
    return value


def parse_manifest(doc: Any, tenant: str) -> tuple[str, str, dict[str, Any]]:
    """A Kubernetes object (NetworkPolicy, Namespace, or a Pod's metadata) -> (kind, key, the record
    netmaster stores). Raises PolicyError naming the first problem."""
    if not isinstance(doc, dict):
        raise PolicyError("a manifest must be an object")
    kind, api = doc.get("kind"), doc.get("apiVersion")
    meta = doc.get("metadata")
    if not isinstance(meta, dict):
        raise PolicyError("metadata is required")
    name = _dns_name(meta.get("name"), "metadata.name")
    labels = _labels(meta.get("labels"), "metadata.labels")
    if kind == "Namespace" and api == "v1":
        return KIND_NAMESPACE, object_key(tenant, name), {"tenantName": tenant, "namespace": name,
                                                          "labels": labels}
    namespace = _dns_name(meta.get("namespace") or "default", "metadata.namespace")
    if kind == "Pod" and api == "v1":
        return KIND_POD, object_key(tenant, namespace, name), {"tenantName": tenant, "namespace": namespace,
                                                               "name": name, "labels": labels}
    if kind == "NetworkPolicy" and api == API_VERSION:
        spec = doc.get("spec")
        NetworkPolicy.parse_spec(namespace, name, spec)  # refuses what does not parse
        return KIND_POLICY, object_key(tenant, namespace, name), {"tenantName": tenant, "namespace": namespace,
                                                                  "name": name, "spec": spec}
    raise PolicyError(f"unsupported object {api}/{kind}: NetworkPolicy ({API_VERSION}), Namespace or Pod (v1)")


def spec_text(spec: Any) -> str:
    """A spec as canonical JSON text (how agents keep it hashable and cache its parse)."""
    return json.dumps(spec, sort_keys=True, separators=(",", ":"))
