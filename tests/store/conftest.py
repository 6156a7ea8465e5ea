"""Every store backend runs the same contract suite: add a backend to ``BACKENDS`` to enrol it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from netmaster.store.base import Store
from netmaster.store.memory import MemoryStore
from netmaster.store.sqlite import SqliteStore

# name -> factory(tmp_path, history) ; a backend that needs a server starts it in its factory.
BACKENDS: dict[str, Callable[[Path, int], Store]] = {
    "memory": lambda tmp, history: MemoryStore(history=history),
    "sqlite": lambda tmp, history: SqliteStore(tmp / "state.db", history=history),
}


@pytest.fixture(params=sorted(BACKENDS))
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
async def store(backend: str, tmp_path: Path) -> AsyncIterator[Store]:
    s = BACKENDS[backend](tmp_path, 10_000)
    yield s
    await s.close()
