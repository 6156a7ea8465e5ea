"""Every store backend runs the same contract suite: add a backend to ``BACKENDS`` to enrol it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from netmaster.store.base import Store
from testbed.etcd import shared_etcd
from testbed.stores import BACKENDS


@pytest.fixture(params=sorted(BACKENDS))
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(autouse=True)
def _clean_etcd(request: pytest.FixtureRequest) -> None:
    """etcd outlives a test: start every etcd test from an empty keyspace and no leases."""
    params = getattr(request.node, "callspec", None)
    if params is not None and params.params.get("backend") == "etcd":
        shared_etcd().wipe()


@pytest.fixture
async def store(backend: str, tmp_path: Path) -> AsyncIterator[Store]:
    s = BACKENDS[backend](tmp_path, 10_000)
    yield s
    await s.close()
