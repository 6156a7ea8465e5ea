"""State store backends behind one interface (see :mod:`netmaster.store.base`)."""

from __future__ import annotations

from netmaster.store.base import Store, StoreError
from netmaster.store.etcd_options import split_store_url

DEFAULT_STORE_URL = "sqlite:///var/lib/contiv/netmaster.db"


def open_store(url: str, *, readonly: bool = False) -> Store:
    """Open the backend a store URL names: ``memory://``, ``sqlite:///PATH`` or ``etcd://H:P[,H:P]``.

    ``readonly`` matters for SQLite only, whose opening otherwise cleans up (see SqliteStore); the
    other backends are shared with running netmasters anyway.
    """
    scheme = split_store_url(url).scheme
    if scheme == "memory":
        from netmaster.store.memory import MemoryStore

        return MemoryStore()
    if scheme == "sqlite":
        path = url[len("sqlite://") :]
        if not path or path == "/":
            raise StoreError(f"invalid store URL {url!r}: expected sqlite:///absolute/path.db")
        from netmaster.store.sqlite import SqliteStore

        return SqliteStore(path, readonly=readonly)
    if scheme in ("etcd", "etcds"):
        try:
            from netmaster.store.etcd import EtcdStore  # type: ignore[import-not-found]
        except ImportError as exc:  # pragma: no cover - until the etcd backend lands
            raise StoreError(f"etcd store is not available in this build: {exc}") from exc
        return EtcdStore.from_url(url)
    raise StoreError(f"invalid store URL {url!r}: expected memory://, sqlite:///PATH or etcd://HOST:PORT[,HOST:PORT]")
