"""Pods through kubelet's path to the network, CRI -> containerd -> CNI, on two simulated hosts with
real agents, Open vSwitch and netmaster: addresses, reachability across hosts and namespaces, the
pod's Kubernetes identity on its endpoint, Contiv's pod annotations choosing tenant, network and
group, and nothing left after StopPodSandbox + RemovePodSandbox (containerd's two DELs)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from testbed.cluster import in_ns, leftovers
from testbed.cluster.prereq import requires
from testbed.cri.client import PodSpec
from testbed.cri.cluster import CriCluster, Pod, missing_cri, pod_annotations
from testbed.sync_cluster import Netmaster, wait_revision
from testbed.waiting import eventually

pytestmark = [pytest.mark.slow, requires(missing_cri())]
T, T2 = "k8s", "k8s-other"


@pytest.fixture(scope="module")
def env() -> Iterator[tuple[CriCluster, Netmaster]]:
    cluster = CriCluster(tenant=T, network="pods", group="default-group")
    try:
        cluster.up(start_agents=False)
        nm = Netmaster(cluster.netmaster_url)
        for tenant, subnet in ((T, "10.62.0.0/24"), (T2, "10.63.0.0/24")):
            nm.post("tenants", tenant, tenantName=tenant)
            nm.post("networks", f"{tenant}:pods", tenantName=tenant, networkName="pods", encap="vxlan",
                    subnet=subnet, gateway=subnet.replace("0/24", "254"))
            nm.post("endpointGroups", f"{tenant}:default-group", tenantName=tenant, groupName="default-group",
                    networkName="pods")
        nm.post("networks", f"{T}:alt", tenantName=T, networkName="alt", encap="vxlan", subnet="10.64.0.0/24",
                gateway="10.64.0.254")
        nm.post("endpointGroups", f"{T}:alt-web", tenantName=T, groupName="alt-web", networkName="alt")
        rev = nm.post("endpointGroups", f"{T}:db", tenantName=T, groupName="db", networkName="pods")
        for host in cluster.hosts:
            cluster.start_agent(host)
        wait_revision(cluster, rev)
        for host in cluster.hosts:
            cluster.start_runtime(host)
        yield cluster, nm
    finally:
        cluster.down()
    assert leftovers(cluster.prefix) == []


def annotated(name: str, **labels: str) -> PodSpec:
    """A pod of namespace z with Contiv's annotations (tenant, network, net_group)."""
    return PodSpec(name, "z", annotations=pod_annotations(**labels))


def endpoint_of(nm: Netmaster, pod: Pod) -> dict[str, Any] | None:
    eps = [ep for ep in nm.ok(nm.http.get("/api/v1/endpoints/")) if ep.get("containerID") == pod.id]
    return eps[0] if eps else None


def pings(pod: Pod, ip: str) -> bool:
    return pod.run("ping", "-c", "1", "-W", "1", ip).returncode == 0


def host_side(cluster: CriCluster, i: int) -> tuple[list[str], list[str]]:
    host = cluster.hosts[i]
    ports = [p for p in host.ovs.run("ovs-vsctl", "list-ports", host.bridge).split() if p.startswith("ve")]
    links = in_ns(host.netns, "ip", "-o", "link", "show").stdout
    veths = [m for m in re.findall(r"^\d+: ([^:@]+)", links, re.M) if m.startswith(("ve", "vc"))]
    return ports, veths


def test_pods_in_two_namespaces_on_two_hosts(env: tuple[CriCluster, Netmaster]) -> None:
    cluster, nm = env
    h1, h2 = cluster.hosts
    a = cluster.run_pod(h1, PodSpec("a", "x"))
    b = cluster.run_pod(h2, PodSpec("b", "y"))
    assert {a.ip[:8], b.ip[:8]} == {"10.62.0."}
    assert a.ip != b.ip
    ep = endpoint_of(nm, a)
    assert ep is not None
    assert (ep["host"], ep["tenantName"], ep["networkName"], ep["groupName"], ep["ipAddress"]) == (
        "h1", T, "pods", "default-group", a.ip)
    assert ep["containerName"] == "x/a"
    assert {"K8S_POD_NAMESPACE": "x", "K8S_POD_NAME": "a"}.items() <= ep["labels"].items()
    # netctl's inspect finds the pod by its sandbox id (what crictl shows) or namespace/name
    for pattern in (a.id[:12], "x/a"):
        out = subprocess.run([sys.executable, "-m", "netmaster.cli.netctl", "--netmaster", cluster.netmaster_url,
                              "endpoint", "inspect", pattern], capture_output=True, text=True, timeout=30)
        assert out.returncode == 0, out.stderr
        oper = json.loads(out.stdout)["Oper"]
        assert (oper["endpointID"], oper["containerName"]) == (f"{a.id}:eth0", "x/a")
        assert "'K8S_POD_NAMESPACE': 'x'" in oper["labels"]
        assert "'K8S_POD_NAME': 'a'" in oper["labels"]
    eventually(lambda: pings(a, b.ip), timeout=30, what="x/a on h1 reaching y/b on h2")
    assert pings(b, a.ip)


def test_pod_annotations_choose_tenant_network_group(env: tuple[CriCluster, Netmaster]) -> None:
    cluster, nm = env
    h1, h2 = cluster.hosts
    in_db = cluster.run_pod(h1, annotated("db-0", net_group="db"))
    in_alt = cluster.run_pod(h2, annotated("alt-0", network="alt", net_group="alt-web"))
    other = cluster.run_pod(h2, annotated("other-0", tenant=T2))
    got = {p.spec.name: endpoint_of(nm, p) for p in (in_db, in_alt, other)}
    assert {k: (v["tenantName"], v["networkName"], v["groupName"]) for k, v in got.items() if v} == {
        "db-0": (T, "pods", "db"),  # group from the annotation, the rest from the conflist
        "alt-0": (T, "alt", "alt-web"),
        "other-0": (T2, "pods", "default-group"),
    }
    assert (in_alt.ip[:8], other.ip[:8]) == ("10.64.0.", "10.63.0.")


def test_unknown_group_annotation_fails_the_pod_and_leaves_nothing(env: tuple[CriCluster, Netmaster]) -> None:
    cluster, nm = env
    h1 = cluster.hosts[0]
    before = host_side(cluster, 0)
    with pytest.raises(Exception, match="nope"):
        cluster.run_pod(h1, annotated("bad-0", net_group="nope"))
    assert [ep for ep in nm.ok(nm.http.get("/api/v1/endpoints/")) if ep.get("containerName") == "z/bad-0"] == []
    eventually(lambda: host_side(cluster, 0) == before, what="no port or veth left by the failed pod")


def test_stop_and_remove_leave_nothing(env: tuple[CriCluster, Netmaster]) -> None:
    cluster, nm = env
    before = [host_side(cluster, i) for i in range(2)]
    pods = [cluster.run_pod(h, annotated(f"gone-{i}")) for i, h in enumerate(cluster.hosts)]
    assert all(endpoint_of(nm, p) for p in pods)
    for p in pods:
        cluster.remove_pod(p)
    assert [endpoint_of(nm, p) for p in pods] == [None, None]
    reservations = nm.ok(nm.http.get("/api/v1/addressReservations/"))
    assert [r for r in reservations if r.get("ipAddress") in {p.ip for p in pods}] == []
    for i, p in enumerate(pods):
        eventually(lambda i=i: host_side(cluster, i) == before[i], what=f"h{i + 1} back to its ports")
        _, local = cluster.hosts[i].request("GET", "/endpoints")
        assert not any(ep["endpoint_id"].startswith(p.id) for ep in local)
        assert not Path(p.netns).exists()
        # containerd sent two DELs (stop, then remove without a netns); both succeeded
        dels = re.findall(rf"cni DEL {p.id}:eth0 -> (\d+)", cluster.agent_log(p.host))
        assert dels == ["0", "0"], dels
