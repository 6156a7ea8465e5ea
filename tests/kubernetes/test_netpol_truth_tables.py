"""Kubernetes NetworkPolicy through netmaster's API, enforced by the agents' policy stages, checked
with the upstream e2e truth tables (tests/kubernetes/netpol_cases.yaml) over real TCP and UDP
connections between pods that containerd's CRI created on two simulated hosts."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

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
    assert leftovers(cluster.prefix) == []


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_truth_table(lab: NetpolLab, case: dict) -> None:
    result = lab.run_case(case)
    RESULTS.append(result)
    assert result.ok, "\n".join(result.failures[:20])
