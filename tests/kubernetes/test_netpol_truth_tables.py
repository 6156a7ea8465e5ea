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
            if r.failures:  # also for the known issue, whose assertion pytest does not show
                print(f"  failed: {r.name}:\n    " + "\n    ".join(r.failures))
    assert leftovers(cluster.prefix) == []


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_truth_table(lab: NetpolLab, case: dict, request: pytest.FixtureRequest) -> None:
    if case.get("known_issue"):
        request.applymarker(pytest.mark.xfail(reason=case["known_issue"], strict=False))
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
