"""The Kubernetes adapter's first sync into netmaster, next to the same objects POSTed directly.

Starts a netmaster (a scratch SQLite store) and, for ``--pods`` pods (labelled, over ``--namespaces``
namespaces) and ``--policies`` NetworkPolicies, times in one run:

* reference: every object POSTed to ``/api/v1/kubernetes/`` one after the other by a plain HTTP
  client (what ``netctl apply -f`` does, without its process start);
* the adapter's first list of each resource into an empty tenant (``Reconciler.relist``: one GET of
  what netmaster holds, then one POST per object);
* the adapter's list again with nothing changed (a restart, or a re-list after 410): the GET and the
  comparison only;
* a watch event that changes nothing netmaster keeps (a pod's status), per event.

Prints seconds and the adapter/reference ratio. Nothing is asserted; figures are in
docs/performance.md.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from contiv_api.netmaster_client import NetmasterClient
from netmaster.kubernetes.adapter.metrics import AdapterMetrics
from netmaster.kubernetes.adapter.reconcile import Reconciler
from netmaster.kubernetes.adapter.translate import NAMESPACES, NETWORK_POLICIES, PODS, Resource
from testbed.netmaster import NetmasterProcess


def objects(pods: int, namespaces: int, policies: int) -> dict[Resource, list[dict[str, Any]]]:
    nss = [f"ns{i}" for i in range(namespaces)]
    return {
        NAMESPACES: [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n, "labels": {"team": n}}}
                     for n in nss],
        PODS: [{"apiVersion": "v1", "kind": "Pod", "metadata": {
            "name": f"pod{i}", "namespace": nss[i % namespaces], "labels": {"app": f"app{i % 20}", "pod": f"p{i}"}},
            "spec": {"containers": [{"name": "c"}]}, "status": {"phase": "Running"}} for i in range(pods)],
        NETWORK_POLICIES: [{"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {
            "name": f"np{i}", "namespace": nss[i % namespaces]}, "spec": {
            "podSelector": {"matchLabels": {"app": f"app{i % 20}"}}, "policyTypes": ["Ingress"],
            "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": f"app{(i + 1) % 20}"}}}],
                         "ports": [{"port": 80}]}]}} for i in range(policies)],
    }


async def direct_posts(url: str, tenant: str, objs: dict[Resource, list[dict[str, Any]]]) -> float:
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        started = time.perf_counter()
        for items in objs.values():
            for obj in items:
                (await http.post("/api/v1/kubernetes/", params={"tenant": tenant}, json=obj)).raise_for_status()
        return time.perf_counter() - started


async def run(url: str, objs: dict[Resource, list[dict[str, Any]]]) -> dict[str, float]:
    """The reference before and after the adapter (same store, growing alike), averaged."""
    out: dict[str, float] = {}
    before = await direct_posts(url, "ref", objs)
    async with NetmasterClient(url) as client:
        rec = Reconciler(client, "adapter", AdapterMetrics())
        started = time.perf_counter()
        for resource, items in objs.items():
            await rec.relist(resource, items)
        out["adapter: first lists"] = time.perf_counter() - started
        started = time.perf_counter()
        for resource, items in objs.items():
            await rec.relist(resource, items)
        out["adapter: lists again, nothing changed"] = time.perf_counter() - started
        pods = objs[PODS]
        started = time.perf_counter()
        for pod in pods:
            await rec.handle(PODS, "MODIFIED", {**pod, "status": {"phase": "Succeeded"}})
        out["adapter: status-only pod event (each)"] = (time.perf_counter() - started) / len(pods)
    after = await direct_posts(url, "ref2", objs)
    out["reference: direct POSTs"] = (before + after) / 2
    print(f"  (reference before the adapter {before:.2f} s, after {after:.2f} s)")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pods", type=int, default=1000)
    ap.add_argument("--namespaces", type=int, default=20)
    ap.add_argument("--policies", type=int, default=100)
    args = ap.parse_args()
    objs = objects(args.pods, args.namespaces, args.policies)
    total = sum(len(v) for v in objs.values())
    with tempfile.TemporaryDirectory() as tmp, \
            NetmasterProcess.start(f"sqlite:///{Path(tmp) / 'nm.db'}") as nm:
        for tenant in ("ref", "adapter", "ref2"):
            httpx.post(f"{nm.url}/api/v1/tenants/{tenant}/", json={"tenantName": tenant}, timeout=10).raise_for_status()
        figures = asyncio.run(run(nm.url, objs))
    print(f"{args.pods} pods, {args.namespaces} namespaces, {args.policies} policies ({total} objects), "
          "netmaster on SQLite")
    for name, seconds in figures.items():
        print(f"  {name:42s} {seconds * 1e6:9.0f} us" if "each" in name else f"  {name:42s} {seconds:9.2f} s")
    ratio = figures["adapter: first lists"] / figures["reference: direct POSTs"]
    print(f"  adapter first sync / direct POSTs: {ratio:.2f}x")


if __name__ == "__main__":
    main()
