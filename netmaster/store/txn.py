"""Optimistic transactions over the store: read, compute, commit if nothing changed, else retry.

Every API mutation runs as one :func:`run_txn` call. The function it runs reads through a
:class:`Txn`, which remembers the revision of every key it read (and of a per-kind generation key
for every collection it listed), and buffers its writes. The commit compares all of those
revisions and applies all writes at once, so an operation either happens entirely (object,
allocations, counters) or not at all, and two netmasters racing for the same resource cannot both
win: the loser re-runs against the new state.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from netmaster.errors import ApiError, ConflictError, UnavailableError
from netmaster.store.base import Compare, Delete, Op, Put, Store, StoreError, StoreUnavailableError

T = TypeVar("T")

_MISSING = object()


class Txn:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._reads: dict[str, int] = {}
        self._listed: dict[str, int] = {}  # prefix listed with a generation -> the revision it was read at
        self._cache: dict[str, Any] = {}
        self._writes: dict[str, Any] = {}  # key -> value, or None for delete
        self._bumped: set[str] = set()
        self.conflict_revision = 0  # after a failed commit: the store revision that refused it

    async def get(self, key: str) -> Any:
        """The JSON value at ``key`` as this transaction sees it (its own writes included)."""
        if key in self._writes:
            return self._writes[key]
        if key in self._cache:
            return self._cache[key]
        kv = await self.store.get(key)
        self._reads[key] = kv.mod_revision if kv else 0
        value = json.loads(kv.value) if kv else None
        self._cache[key] = value
        return value

    async def list(self, prefix: str, generation: str | None = None) -> list[tuple[str, Any]]:
        """Every (key, value) under ``prefix``; ``generation`` guards against concurrent inserts.

        A compare on the listed keys cannot notice a key added meanwhile, so collections whose
        membership matters (networks of a tenant, rules of a policy) have a generation key that every
        create and delete bumps; listing reads it, and the commit compares it. The listed keys
        themselves are then guarded by one compare on the prefix ("nothing under it modified since the
        listing's revision"), not one per key: etcd refuses a transaction of more than 128 compares, and
        a network create lists every network.
        """
        if generation is not None:
            await self.get(generation)
        kvs, revision = await self.store.list(prefix)
        if generation is not None:
            self._listed.setdefault(prefix, revision)  # the first listing's: its values are the ones kept
        merged: dict[str, Any] = {}
        for kv in kvs:
            if kv.key not in self._cache:
                if generation is None:
                    self._reads[kv.key] = kv.mod_revision
                self._cache[kv.key] = json.loads(kv.value)
            merged[kv.key] = self._cache[kv.key]
        for key, value in self._writes.items():
            if key.startswith(prefix):
                merged[key] = value
        return sorted((k, v) for k, v in merged.items() if v is not None)

    def put(self, key: str, value: Any) -> None:
        self._writes[key] = value

    def delete(self, key: str) -> None:
        self._writes[key] = None

    async def bump(self, generation: str) -> None:
        """Mark a collection's membership as changed (see :meth:`list`)."""
        if generation in self._bumped:
            return
        self._bumped.add(generation)
        current = await self.get(generation) or 0
        self.put(generation, current + 1)

    async def commit(self) -> int | None:
        """Apply the writes if every read still holds; the new revision, or None on conflict."""
        if not self._writes:
            # A read-only transaction still must have seen a consistent state to be meaningful,
            # but it changed nothing, so there is nothing to compare.
            return await self.store.revision()
        compares = [Compare(k, rev) for k, rev in self._reads.items()]
        compares += [Compare(prefix, rev, prefix=True) for prefix, rev in self._listed.items()]
        ops: list[Op] = [
            Delete(k) if v is None else Put(k, json.dumps(v, separators=(",", ":"))) for k, v in self._writes.items()
        ]
        result = await self.store.txn(compares, ops)
        if not result.succeeded:
            self.conflict_revision = result.revision
            return None
        return result.revision


async def run_txn(store: Store, fn: Callable[[Txn], Awaitable[T]], *, attempts: int = 50) -> tuple[T, int]:
    """Run ``fn`` in a transaction until it commits; return its result and the commit revision.

    Over a store whose reads may lag (the watch cache), a refusal (``ApiError``) is only believed
    once the reads are up to date, and a failed commit waits for the reads to reach the write that
    beat it before retrying.
    """
    rechecked = False
    for attempt in range(attempts):
        txn = Txn(store)
        try:
            try:
                result = await fn(txn)
            except ApiError as exc:
                if exc.status >= 500 or rechecked or not await store.refresh():
                    raise
                rechecked = True
                continue
            revision = await txn.commit()
            if revision is None:
                await store.catch_up(txn.conflict_revision)
        except StoreUnavailableError as exc:
            raise UnavailableError(f"state store unavailable: {exc}") from exc
        except StoreError as exc:
            raise UnavailableError(f"state store error: {exc}") from exc
        if revision is not None:
            return result, revision
        await asyncio.sleep(random.uniform(0, min(0.002 * 2**attempt, 0.05)))
    raise ConflictError("too many concurrent updates, try again")


class KeyedLocks:
    """One asyncio lock per key, created on demand and dropped when nobody holds or waits for it.

    Optimistic transactions on one hot key (the address pool of a network) invalidate each other when
    one process runs many at once: every commit but one fails and re-runs. Taking the key's lock around
    the transaction makes a process's own requests queue instead, so only other netmasters can make a
    commit fail (docs/performance.md, *cluster*: 2-3x the allocations per second on etcd).
    """

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (None, 0))
        if lock is None:
            lock = asyncio.Lock()
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)

    def __len__(self) -> int:
        return len(self._locks)


async def read_only(store: Store, fn: Callable[[Txn], Awaitable[T]]) -> T:
    """Run a read-only ``fn`` (no commit): for GET and inspect."""
    try:
        return await fn(Txn(store))
    except StoreError as exc:
        raise UnavailableError(f"state store unavailable: {exc}") from exc


__all__ = ["KeyedLocks", "Txn", "read_only", "run_txn"]
