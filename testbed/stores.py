"""Every store backend, ready to construct: the store contract suite and the cluster tests run on each."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from netmaster.store.base import Store
from netmaster.store.etcd import EtcdStore
from netmaster.store.memory import MemoryStore
from netmaster.store.sqlite import SqliteStore
from testbed.etcd import shared_etcd

# name -> factory(tmp_path, history) ; a backend that needs a server starts it in its factory.
BACKENDS: dict[str, Callable[[Path, int], Store]] = {
    "memory": lambda tmp, history: MemoryStore(history=history),
    "sqlite": lambda tmp, history: SqliteStore(tmp / "state.db", history=history),
    # A real single-member etcd shared by the session; ``history`` makes the store compact etcd.
    "etcd": lambda tmp, history: EtcdStore.from_url(f"{shared_etcd().url}?history={history}"),
}
