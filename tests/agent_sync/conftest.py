"""A SyncCluster (two hosts, real OVS, agents following a real netmaster) per test module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.agent_sync.sync_cluster import Netmaster, SyncCluster
from tests.cluster import leftovers
from tests.cluster.prereq import missing_prerequisites


@pytest.fixture(scope="module")
def sync_cluster() -> Iterator[SyncCluster]:
    reason = missing_prerequisites()
    if reason:
        pytest.skip(reason)
    c = SyncCluster(n_hosts=2)
    try:
        c.up()
        yield c
    finally:
        c.down()
        assert leftovers(c.prefix) == [], "cluster cleanup left something behind"


@pytest.fixture
def nm(sync_cluster: SyncCluster) -> Netmaster:
    assert sync_cluster.netmaster is not None
    return Netmaster(sync_cluster.netmaster.url)
