"""The whole ACI stack per module: apic_mock, aci-gw, netmaster --infra aci, two hosts with agents, and a
simulated leaf with the hosts' trunks on its ports eth1/1 and eth1/2."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from testbed.cluster.aci import AciCluster
from testbed.cluster.prereq import running


@pytest.fixture(scope="module")
def fabric_cluster() -> Iterator[AciCluster]:
    yield from running(AciCluster(n_hosts=2, leaf=True))
