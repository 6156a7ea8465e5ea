"""Every store backend runs the same contract suite: add a backend to ``BACKENDS`` to enrol it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from netmaster.store.base import Store
from netmaster.store.etcd import EtcdStore
from netmaster.store.memory import MemoryStore
from netmaster.store.sqlite import SqliteStore
from tests.etcd_server import shared_etcd

# name -> factory(tmp_path, history) ; a backend that needs a server starts it in its factory.
BACKENDS: dict[str, Callable[[Path, int], Store]] = {
    "memory": lambda tmp, history: MemoryStore(history=history),
    "sqlite": lambda tmp, history: SqliteStore(tmp / "state.db", history=history),
    # A real single-member etcd shared by the session; ``history`` makes the store compact etcd.
    "etcd": lambda tmp, history: EtcdStore.from_url(f"{shared_etcd().url}?history={history}"),
}


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
