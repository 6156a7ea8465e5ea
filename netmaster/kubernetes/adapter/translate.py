"""A Kubernetes object, as the API server sends it (a dict), -> the manifest netmaster's
``POST /api/v1/kubernetes/`` takes, its key there, and a fingerprint of what netmaster would store.

Only what NetworkPolicy semantics need crosses: a policy's spec, a namespace's labels, a pod's labels
(kubelet does not hand pod labels to CNI, so this is where they come from). The fingerprint lets the
adapter skip the many updates that change nothing of that (a pod's status, a policy's annotations).
netmaster checks the rest with the parser it shares with the agents; nothing is checked twice here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from contiv_api.k8s_netpol import API_VERSION, POD_TENANT_ANNOTATION, object_key, spec_text


@dataclass(frozen=True)
class Resource:
    """A resource the adapter watches; ``plural`` is also netmaster's collection name."""

    plural: str
    kind: str
    api_version: str
    namespaced: bool


NAMESPACES = Resource("namespaces", "Namespace", "v1", namespaced=False)
PODS = Resource("pods", "Pod", "v1", namespaced=True)
NETWORK_POLICIES = Resource("networkpolicies", "NetworkPolicy", API_VERSION, namespaced=True)
#: In the order of the first sync: labels before the policies that select on them, so a policy never
#: lands while the pods it allows still have no labels (which would isolate them for a moment).
RESOURCES = (NAMESPACES, PODS, NETWORK_POLICIES)


@dataclass(frozen=True)
class Desired:
    """One object as netmaster should hold it."""

    key: str
    manifest: dict[str, Any]
    fingerprint: str


def netmaster_key(resource: Resource, obj: Mapping[str, Any], tenant: str) -> str:
    """netmaster's key of *obj* (``tenant:namespace[:name]``)."""
    meta = obj.get("metadata") or {}
    name = str(meta.get("name") or "")
    if not resource.namespaced:
        return object_key(tenant, name)
    return object_key(tenant, str(meta.get("namespace") or "default"), name)


def desired(resource: Resource, obj: Mapping[str, Any], tenant: str) -> Desired | None:
    """What netmaster should hold for *obj* in *tenant*; None when it is none of netmaster's business
    there: a pod on the host's network (no CNI, no endpoint) or a pod whose ``io.contiv.tenant``
    annotation puts its endpoint in another tenant."""
    meta = obj.get("metadata") or {}
    metadata: dict[str, Any] = {"name": meta.get("name"), "labels": dict(meta.get("labels") or {})}
    if resource.namespaced:
        metadata["namespace"] = meta.get("namespace") or "default"
    manifest: dict[str, Any] = {"apiVersion": resource.api_version, "kind": resource.kind, "metadata": metadata}
    if resource is NETWORK_POLICIES:
        manifest["spec"] = obj.get("spec")
        fingerprint = spec_text(obj.get("spec"))
    else:
        if resource is PODS and not pod_in_tenant(obj, tenant):
            return None
        fingerprint = spec_text(metadata["labels"])
    return Desired(netmaster_key(resource, obj, tenant), manifest, fingerprint)


def pod_in_tenant(pod: Mapping[str, Any], tenant: str) -> bool:
    """A pod has an endpoint in *tenant*: not on the host's network, and not annotated into another
    tenant (without the annotation the CNI configuration's tenant applies, which is the adapter's)."""
    if (pod.get("spec") or {}).get("hostNetwork"):
        return False
    annotations = (pod.get("metadata") or {}).get("annotations") or {}
    return annotations.get(POD_TENANT_ANNOTATION, tenant) == tenant


def held_fingerprint(resource: Resource, record: Mapping[str, Any]) -> str:
    """The fingerprint of a record netmaster lists (``GET /api/v1/kubernetes/<plural>/``)."""
    if resource is NETWORK_POLICIES:
        return spec_text(record.get("spec"))
    return spec_text(record.get("labels") or {})
