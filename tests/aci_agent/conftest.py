"""One ACI-mode cluster (two hosts, agents following netmaster --infra aci, aci-gw + apic_mock) per module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.cluster import leftovers
from tests.cluster.aci import AciCluster
from tests.cluster.prereq import missing_prerequisites


@pytest.fixture(scope="module")
def aci_cluster() -> Iterator[AciCluster]:
    reason = missing_prerequisites()
    if reason:
        pytest.skip(reason)
    c = AciCluster(n_hosts=2)
    try:
        c.up()
        yield c
    finally:
        c.down()
        assert leftovers(c.prefix) == [], "cluster cleanup left something behind"
