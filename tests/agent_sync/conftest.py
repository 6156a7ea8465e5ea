"""A SyncCluster (two hosts, real OVS, agents following a real netmaster) per test module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from testbed.cluster.prereq import running
from testbed.sync_cluster import Netmaster, SyncCluster


@pytest.fixture(scope="module")
def sync_cluster() -> Iterator[SyncCluster]:
    yield from running(SyncCluster(n_hosts=2))


@pytest.fixture
def nm(sync_cluster: SyncCluster) -> Netmaster:
    assert sync_cluster.netmaster is not None
    return Netmaster(sync_cluster.netmaster.url)
