"""What the single-process backends (memory, SQLite) share: watch fan-out, leases, the txn protocol.

A subclass provides storage: read a key, read a prefix, apply a batch of operations at a new revision
and record the events, read events after a revision. This class turns that into the full
:class:`~netmaster.store.base.Store` contract. Everything runs on one asyncio loop, so a transaction
is atomic by construction: no ``await`` happens between its compares and its writes.
"""

from __future__ import annotations

import abc
import asyncio
import itertools
import time
from collections.abc import AsyncIterator

from netmaster.store.base import (
    CompactedError,
    Compare,
    Delete,
    Event,
    EventType,
    KeyValue,
    LeaseNotFoundError,
    Op,
    Put,
    Store,
    TxnResult,
)


class LocalStore(Store):
    def __init__(self, *, history: int = 10_000) -> None:
        self._history = history
        self._changed = asyncio.Event()
        self._leases: dict[int, tuple[float, float]] = {}  # id -> (ttl, deadline)
        self._lease_ids = itertools.count(int(time.time() * 1000) & 0x7FFFFFFF)
        self._closed = False

    # -- storage primitives provided by the subclass ------------------------------------------------

    @abc.abstractmethod
    def _get(self, key: str) -> KeyValue | None: ...

    @abc.abstractmethod
    def _range(self, prefix: str) -> list[KeyValue]: ...

    @abc.abstractmethod
    def _current_revision(self) -> int: ...

    @abc.abstractmethod
    def _commit(self, revision: int, writes: list[tuple[Op, KeyValue | None]]) -> list[Event]:
        """Persist ``writes`` (each op with the key's current value) at ``revision``; return events."""

    @abc.abstractmethod
    def _events_after(self, prefix: str, revision: int) -> list[Event]: ...

    @abc.abstractmethod
    def _oldest_revision(self) -> int:
        """Oldest revision whose events are still kept (watch from earlier is compacted)."""

    @abc.abstractmethod
    def _keys_with_lease(self, lease: int) -> list[str]: ...

    # -- Store ---------------------------------------------------------------------------------------

    async def get(self, key: str) -> KeyValue | None:
        self._expire_leases()
        return self._get(key)

    async def list(self, prefix: str) -> tuple[list[KeyValue], int]:
        self._expire_leases()
        return self._range(prefix), self._current_revision()

    async def revision(self) -> int:
        return self._current_revision()

    async def txn(self, compares: list[Compare], ops: list[Op]) -> TxnResult:
        self._expire_leases()
        return self._txn(compares, ops)

    def _txn(self, compares: list[Compare], ops: list[Op]) -> TxnResult:
        failed = []
        for cmp in compares:
            if cmp.prefix:
                if any(kv.mod_revision > cmp.mod_revision for kv in self._range(cmp.key)):
                    failed.append(cmp.key)
                continue
            kv = self._get(cmp.key)
            current = kv.mod_revision if kv else 0
            if current != cmp.mod_revision:
                failed.append(cmp.key)
        revision = self._current_revision()
        if failed:
            return TxnResult(False, revision, failed)
        for op in ops:
            if isinstance(op, Put) and op.lease and op.lease not in self._leases:
                raise LeaseNotFoundError(f"lease {op.lease} not found")
        writes = [(op, self._get(op.key)) for op in ops]
        writes = [(op, kv) for op, kv in writes if isinstance(op, Put) or kv is not None]
        if not writes:
            return TxnResult(True, revision)
        events = self._commit(revision + 1, writes)
        if events:
            self._notify()
        return TxnResult(True, revision + 1)

    async def watch(self, prefix: str, since: int) -> AsyncIterator[Event]:  # type: ignore[override]
        oldest = self._oldest_revision()
        if since + 1 < oldest:
            raise CompactedError(since, oldest)
        last = since
        while not self._closed:
            waiter = self._changed
            for event in self._events_after(prefix, last):
                last = event.revision
                yield event
            last = max(last, self._current_revision())
            await waiter.wait()

    def _notify(self) -> None:
        # Wake every watcher: swap in a fresh Event so waiters of the old one all resume.
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    # -- leases --------------------------------------------------------------------------------------

    async def lease_grant(self, ttl: float) -> int:
        lease = next(self._lease_ids)
        self._leases[lease] = (ttl, time.monotonic() + ttl)
        self._schedule_expiry(ttl)
        return lease

    async def lease_keepalive(self, lease: int) -> None:
        self._expire_leases()
        if lease not in self._leases:
            raise LeaseNotFoundError(f"lease {lease} not found")
        ttl, _ = self._leases[lease]
        self._leases[lease] = (ttl, time.monotonic() + ttl)
        self._schedule_expiry(ttl)

    async def lease_revoke(self, lease: int) -> None:
        self._drop_lease(lease)

    def _schedule_expiry(self, ttl: float) -> None:
        # Expiry must happen even when nobody calls the store, so watchers see the keys go.
        asyncio.get_running_loop().call_later(ttl + 0.01, self._expire_leases)

    def _expire_leases(self) -> None:
        now = time.monotonic()
        for lease in [lease for lease, (_, deadline) in self._leases.items() if deadline <= now]:
            self._drop_lease(lease)

    def _drop_lease(self, lease: int) -> None:
        if self._leases.pop(lease, None) is None:
            return
        keys = self._keys_with_lease(lease)
        if keys:
            self._txn([], [Delete(k) for k in keys])

    async def close(self) -> None:
        self._closed = True
        self._notify()


def make_event(op: Op, previous: KeyValue | None, revision: int) -> Event:
    prev_value = previous.value if previous else None
    if isinstance(op, Put):
        return Event(EventType.PUT, op.key, revision, op.value, prev_value)
    return Event(EventType.DELETE, op.key, revision, None, prev_value)


def next_kv(op: Put, previous: KeyValue | None, revision: int) -> KeyValue:
    return KeyValue(
        key=op.key,
        value=op.value,
        create_revision=previous.create_revision if previous else revision,
        mod_revision=revision,
        version=(previous.version + 1) if previous else 1,
        lease=op.lease,
    )
