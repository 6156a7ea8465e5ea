"""The Kubernetes adapter end to end, minus the API server: what its reconcile sends netmaster
(policies, namespace and pod labels, and a re-list that drops a policy) reaches the agents and decides
real connections between CRI pods on two simulated hosts. The adapter's input is objects as the API
server sends them; the rest (netmaster, agents, Open vSwitch, containerd, pods) is real."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from contiv_api.netmaster_client import NetmasterClient
from netmaster.kubernetes.adapter.metrics import AdapterMetrics
from netmaster.kubernetes.adapter.reconcile import Reconciler
from netmaster.kubernetes.adapter.translate import NAMESPACES, NETWORK_POLICIES, PODS
from testbed.cluster import leftovers
from testbed.cluster.prereq import requires
from testbed.cri.client import PodSpec
from testbed.cri.cluster import CriCluster, Pod, missing_cri
from testbed.sync_cluster import Netmaster, wait_revision
from testbed.waiting import eventually

pytestmark = [pytest.mark.slow, requires(missing_cri())]
REPO = Path(__file__).resolve().parents[2]
T = "k8s-adapter"


@pytest.fixture(scope="module")
def env() -> Iterator[tuple[CriCluster, dict[str, Pod]]]:
    cluster = CriCluster(tenant=T, network="pods", group="default-group")
    servers: list[subprocess.Popen[bytes]] = []
    try:
        cluster.up(start_agents=False)
        nm = Netmaster(cluster.netmaster_url)
        nm.post("tenants", T, tenantName=T)
        nm.post("networks", f"{T}:pods", tenantName=T, networkName="pods", encap="vxlan", subnet="10.66.0.0/24",
                gateway="10.66.0.254")
        rev = nm.post("endpointGroups", f"{T}:default-group", tenantName=T, groupName="default-group",
                      networkName="pods")
        for host in cluster.hosts:
            cluster.start_agent(host)
        wait_revision(cluster, rev)
        for host in cluster.hosts:
            cluster.start_runtime(host)
        h1, h2 = cluster.hosts
        pods = {key: cluster.run_pod(host, PodSpec(key[2:], key[0])) for key, host in
                (("x/a", h1), ("x/b", h2), ("y/c", h1))}
        servers.append(subprocess.Popen(
            ["nsenter", f"--net={pods['x/a'].netns}", sys.executable, "-m", "testbed.netpol_probe", "serve", "80"],
            cwd=REPO, env={"PYTHONPATH": str(REPO), "PATH": "/usr/sbin:/usr/bin:/bin"}, stdout=subprocess.PIPE))
        assert servers[0].stdout is not None
        servers[0].stdout.readline()  # "serving"
        yield cluster, pods
    finally:
        for proc in servers:
            proc.kill()
            proc.wait(10)
        cluster.down()
    assert leftovers(cluster.prefix) == []


def reaches(src: Pod, dst: Pod) -> bool:
    proc = src.run(sys.executable, "-m", "testbed.netpol_probe", "probe", "tcp", "80", dst.ip, timeout=60, cwd=REPO,
                   env={"PYTHONPATH": str(REPO)})
    return proc.returncode == 0 and json.loads(proc.stdout).get(dst.ip) is True


def k8s_pod(key: str, **labels: str) -> dict[str, Any]:
    ns, name = key.split("/")
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns, "labels": labels},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]}, "status": {"phase": "Running"}}


ALLOW_FROM_B = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                "metadata": {"name": "a-from-b", "namespace": "x"},
                "spec": {"podSelector": {"matchLabels": {"pod": "a"}}, "policyTypes": ["Ingress"],
                         "ingress": [{"from": [{"namespaceSelector": {}, "podSelector": {"matchLabels": {"pod": "b"}}}],
                                      "ports": [{"protocol": "TCP", "port": 80}]}]}}


def test_what_the_adapter_sends_decides_connections(env: tuple[CriCluster, dict[str, Pod]]) -> None:
    cluster, pods = env
    a, b, c = pods["x/a"], pods["x/b"], pods["y/c"]
    loop = asyncio.new_event_loop()
    client = NetmasterClient(cluster.netmaster_url, retry_for=10)
    adapter = Reconciler(client, T, AdapterMetrics())
    try:
        # the first lists: namespaces, pods with their labels (a host-network pod is left out), no policy
        loop.run_until_complete(adapter.relist(NAMESPACES, [
            {"metadata": {"name": ns, "labels": {"kubernetes.io/metadata.name": ns}}} for ns in ("x", "y")]))
        proxy = {**k8s_pod("kube-system/proxy"), "spec": {"hostNetwork": True, "containers": []}}
        loop.run_until_complete(adapter.relist(PODS, [k8s_pod("x/a", pod="a"), k8s_pod("x/b", pod="b"),
                                                      k8s_pod("y/c", pod="c"), proxy]))
        assert sorted(adapter.held(PODS)) == [f"{T}:x:a", f"{T}:x:b", f"{T}:y:c"]
        loop.run_until_complete(adapter.relist(NETWORK_POLICIES, []))
        eventually(lambda: reaches(b, a) and reaches(c, a), timeout=60, what="a reachable without policy")
        # a policy from the watch: a admits only pods labelled pod=b
        loop.run_until_complete(adapter.handle(NETWORK_POLICIES, "ADDED", ALLOW_FROM_B))
        eventually(lambda: not reaches(c, a), timeout=60, what="c denied by the policy")
        assert reaches(b, a)
        # c relabelled in the API server: the adapter is where pod labels come from
        loop.run_until_complete(adapter.handle(PODS, "MODIFIED", k8s_pod("y/c", pod="b")))
        eventually(lambda: reaches(c, a), timeout=60, what="c allowed by its new label")
        loop.run_until_complete(adapter.handle(PODS, "MODIFIED", k8s_pod("y/c", pod="c")))
        eventually(lambda: not reaches(c, a), timeout=60, what="c denied again by its old label")
        # the policy deleted while the watch was away: the re-list drops it
        loop.run_until_complete(adapter.relist(NETWORK_POLICIES, []))
        eventually(lambda: reaches(c, a), timeout=60, what="c allowed once the policy is gone")
    finally:
        loop.run_until_complete(client.close())
        loop.close()
