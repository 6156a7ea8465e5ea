"""One ACI-mode cluster (two hosts, agents following netmaster --infra aci, aci-gw + apic_mock) per module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from testbed.cluster.aci import AciCluster
from testbed.cluster.prereq import running


@pytest.fixture(scope="module")
def aci_cluster() -> Iterator[AciCluster]:
    yield from running(AciCluster(n_hosts=2))
