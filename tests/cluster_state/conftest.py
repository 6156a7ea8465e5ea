"""Stores for the cluster-state tests: leader election and membership run over every backend."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from netmaster.store.base import Store
from testbed.etcd import shared_etcd
from testbed.stores import BACKENDS


@pytest.fixture(params=sorted(BACKENDS))
async def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    """One store per backend; the etcd one starts from an empty keyspace."""
    if request.param == "etcd":
        shared_etcd().wipe()
    store = BACKENDS[request.param](tmp_path, 10_000)
    yield store
    await store.close()


@pytest.fixture
async def etcd_store() -> AsyncIterator[Store]:
    shared_etcd().wipe()
    store = BACKENDS["etcd"](Path("."), 10_000)
    yield store
    await store.close()
