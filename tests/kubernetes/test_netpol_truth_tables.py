"""Kubernetes NetworkPolicy through netmaster's API, enforced by the agents' policy stages, checked
with the upstream e2e truth tables (tests/kubernetes/netpol_cases.yaml) over real TCP and UDP
connections between pods that containerd's CRI created on two simulated hosts."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from contiv_api.mac import candidates
from testbed.attacks import Case, Member, Sniffer, leaked_attempts
from testbed.cluster import leftovers
from testbed.cluster.prereq import requires
from testbed.cri.cluster import CriCluster, missing_cri
from testbed.netpol import CaseResult, NetpolLab, load_cases
from testbed.sync_cluster import Netmaster, wait_revision
from testbed.waiting import eventually

pytestmark = [pytest.mark.slow, requires(missing_cri())]
CASES = load_cases(Path(__file__).with_name("netpol_cases.yaml"))
T = "k8s"
RESULTS: list[CaseResult] = []


@pytest.fixture(scope="module")
def lab() -> Iterator[NetpolLab]:
    cluster = CriCluster(tenant=T, network="pods")
    lab = None
    try:
        cluster.up(start_agents=False)
        nm = Netmaster(cluster.netmaster_url)
        nm.post("tenants", T, tenantName=T)
        rev = nm.post("networks", f"{T}:pods", tenantName=T, networkName="pods", encap="vxlan",
                      subnet="10.65.0.0/24", gateway="10.65.0.254")
        for host in cluster.hosts:
            cluster.start_agent(host)
        wait_revision(cluster, rev)
        for host in cluster.hosts:
            cluster.start_runtime(host)
        lab = NetpolLab(cluster, nm, T)
        lab.start()
        yield lab
    finally:
        if lab is not None:
            lab.stop()
        cluster.down()
        passed = sum(r.ok for r in RESULTS)
        print(f"\nNetworkPolicy truth tables: {passed}/{len(RESULTS)} cases passed, "
              f"{sum(r.passed for r in RESULTS)}/{sum(r.probes for r in RESULTS)} matrices")
        for r in RESULTS:
            for late in r.late:
                print(f"  late: {r.name}: {late}")
            if r.failures:
                print(f"  failed: {r.name}:\n    " + "\n    ".join(r.failures))
    assert leftovers(cluster.prefix) == []


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_truth_table(lab: NetpolLab, case: dict) -> None:
    result = lab.run_case(case)
    RESULTS.append(result)
    assert result.ok, "\n".join(result.failures)


BYPASS = {  # attacker -> target, pretending to be a pod the target admits; the decoy is not isolated
    "same-host": Case("x/c", "x/a", "x/b", "x/b", ("x/a",), "y/a"),
    "cross-host": Case("y/b", "x/b", "x/a", "x/a", ("x/b",), "y/a"),
}


@pytest.mark.parametrize("case", list(BYPASS))
def test_isolation_cannot_be_bypassed_with_crafted_frames(lab: NetpolLab, case: str, tmp_path: Path) -> None:
    """x/a admits only x/b, x/b only x/a: crafted frames (broadcast, multicast, unknown and gateway
    MACs, spoofed source IP and/or MAC of the admitted pod, a decoy destination IP) reach neither."""
    lab.reset()
    revision = 0
    for target, peer in (("a", "b"), ("b", "a")):
        revision = max(revision, lab.post({
            "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": f"{target}-from-{peer}", "namespace": "x"},
            "spec": {"podSelector": {"matchLabels": {"pod": target}}, "policyTypes": ["Ingress"],
                     "ingress": [{"from": [{"podSelector": {"matchLabels": {"pod": peer}}}]}]}}))
    wait_revision(lab.cluster, revision, timeout=30)
    records = {ep["containerID"]: ep for ep in lab.nm.ok(lab.nm.http.get("/api/v1/endpoints/"))}
    members = {name: Member(name.replace("/", "-"), Path(pod.netns).name, pod.ip, records[pod.id]["macAddress"])
               for name, pod in lab.pods.items()}
    spec = BYPASS[case]
    sniffers = {name: Sniffer(members[name], tmp_path) for name in {spec.target, *spec.protected}}
    try:
        leaked = leaked_attempts(f"np-{case}", spec, members, sniffers, next(candidates("10.65.0.254")))
    finally:
        for sniffer in sniffers.values():
            sniffer.stop()
    assert leaked == {name: set() for name in spec.protected}


def _pod_flows(lab: NetpolLab, target: str) -> dict[str, str]:
    """The datapath flows (ufid -> text) on *target*'s host that carry IPv4 to *target*."""
    pod = lab.pods[target]
    out = {}
    for line in pod.host.ovs.run("ovs-appctl", "dpctl/dump-flows", "-m").splitlines():
        if f"dst={pod.ip}," in line and line.startswith("ufid:"):
            out[line.split(",", 1)[0]] = line
    return out


def test_policy_change_leaves_no_cached_datapath_verdict(lab: NetpolLab) -> None:
    """No datapath flow cached before a policy change outlives it (docs/pipeline.md, "Datapath flow
    cache"): OVS's userspace datapath can apply a revalidation's new verdict to the wrong one of two
    overlapping cached flows and keep the old verdict on the other, which let pods of another host
    reach an isolated pod ("should allow ingress access from updated namespace"). The agent purges
    the cache with every change, so after the agents applied one, nothing cached before is left."""
    lab.reset()
    before: dict[str, str] = {}

    def cached() -> bool:
        lab.observe("TCP", 80)  # every pod to x/a, from x/a's host and through the tunnel
        before.update(_pod_flows(lab, "x/a"))
        return len(before) >= 2

    eventually(cached, timeout=60, what="datapath flows to x/a after probing it", interval=1.0)
    revision = lab.post({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                         "metadata": {"name": "x-a-from-y", "namespace": "x"},
                         "spec": {"podSelector": {"matchLabels": {"pod": "a"}}, "policyTypes": ["Ingress"],
                                  "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {
                                      "kubernetes.io/metadata.name": "y"}}}]}]}})
    wait_revision(lab.cluster, revision, timeout=30)
    survivors = {ufid: text for ufid, text in _pod_flows(lab, "x/a").items() if ufid in before}
    assert survivors == {}
    result = CaseResult("after the purge", probes=1)
    lab.check("TCP", 80, [["*", "x/a", False], ["y/*", "x/a", True]], result)
    assert result.ok, "\n".join(result.failures)
