"""The watch cache: netmaster's state in memory, fed by one store watch (Kubernetes' watch cache).

A :class:`CachedStore` lists ``/contiv/`` once at a revision, then follows the store's watch from that
revision, so its copy is always the store's state at some revision, the copy's ``revision``. It is a
:class:`~netmaster.store.base.Store` itself, so every service of a netmaster uses it unchanged:

* ``get`` and ``list`` answer from memory (a dict lookup; a sorted-key range for prefixes) once the
  copy has reached every revision this process wrote (read-your-writes within a netmaster);
* :meth:`fresh` is what the API's reads call: it makes sure the copy holds every write any netmaster
  committed more than ``staleness`` seconds before (default 50 ms; 0: every write committed before the
  read began). When the copy was last confirmed against the store longer ago than that, it asks the
  store for its current revision (one round trip on etcd, a memory read on SQLite) and waits until the
  copy has it; a commit of this process confirms the copy too. A store failure seen on any call drops
  the confirmation, so the next read asks the store, and an unreachable store answers 503 as before;
* ``txn`` goes to the store; the commit's compares (on the mod_revisions the copy reported) catch a
  copy that was behind, and :func:`netmaster.store.txn.run_txn` waits for the copy to catch up
  (:meth:`catch_up`) before it retries;
* consumers that follow changes (the object index, the ACI reconciler's follower, the HTTP watch
  fan-out) register a listener, called synchronously for each event after the copy applied it, or
  with ``None`` after a re-list (then everything may have changed).

Every netmaster write is under ``/contiv/``, so every store revision is an event the copy receives:
waiting for a revision the store reported always ends (within :data:`WAIT_LIMIT`, else 503).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

from sortedcontainers import SortedList

from netmaster.store import keys
from netmaster.store.base import (
    CompactedError,
    Compare,
    Event,
    EventType,
    KeyValue,
    Op,
    Store,
    StoreError,
    StoreUnavailableError,
    TxnResult,
    prefix_end,
)

log = logging.getLogger("netmaster.cache")

T = TypeVar("T")

#: Called with each event after the copy applied it; with None after a re-list.
Listener = Callable[[Event | None], None]

WAIT_LIMIT = 10.0  # seconds a read waits for the copy to reach a revision before answering 503
STALENESS = 0.05  # seconds: how old another netmaster's write may be and still be missing from a read
RELIST_DELAY = 0.5


class CachedStore(Store):
    def __init__(self, inner: Store, *, staleness: float = STALENESS) -> None:
        self.inner = inner
        self.staleness = staleness
        # Loop time at which the store was last known to be at or below the copy's (awaited) revision.
        self._confirmed_at = -math.inf
        self.at_revision = 0  # the store revision the copy is at
        self._kvs: dict[str, KeyValue] = {}
        self._keys: SortedList = SortedList()
        self._written = 0  # highest revision this process committed under /contiv/
        self._advanced = asyncio.Event()
        self._listeners: list[Listener] = []
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._failure: StoreError | None = None

    # -- lifecycle -----------------------------------------------------------------------------------

    async def start(self) -> None:
        """Start following the store (idempotent); returns once the first list is in memory."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._follow(), name="store-cache")
        ready = asyncio.ensure_future(self._ready.wait())
        try:
            await asyncio.wait([ready, self._task], timeout=WAIT_LIMIT, return_when=asyncio.FIRST_COMPLETED)
        finally:
            ready.cancel()
        if not self._ready.is_set():
            raise StoreUnavailableError(f"state store unavailable: {self._failure or 'first list timed out'}")

    async def stop(self) -> None:
        """Stop following the store (the store itself stays open)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task
            self._task = None

    async def close(self) -> None:
        await self.stop()
        await self.inner.close()

    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def remove_listener(self, listener: Listener) -> None:
        with contextlib.suppress(ValueError):
            self._listeners.remove(listener)

    async def _follow(self) -> None:
        while True:
            try:
                kvs, revision = await self.inner.list(keys.ROOT)
                self._load(kvs, revision)
                async for event in self.inner.watch(keys.ROOT, revision):
                    self._apply(event)
                return  # the watch ends only when the store is closed
            except CompactedError as exc:
                log.info("store cache: %s; listing again", exc)
            except StoreError as exc:
                self._failure = exc
                log.warning("store cache: state store failed (%s); listing again in %.1fs", exc, RELIST_DELAY)
                await asyncio.sleep(RELIST_DELAY)
            except Exception:  # a bug must not leave every read waiting on a copy nobody updates
                log.exception("store cache: following the store failed; listing again in %.1fs", RELIST_DELAY)
                await asyncio.sleep(RELIST_DELAY)

    def _load(self, kvs: list[KeyValue], revision: int) -> None:
        self._kvs = {kv.key: kv for kv in kvs}
        self._keys = SortedList(self._kvs)
        self._failure = None
        self._advance(revision)
        self._ready.set()
        self._notify(None)

    def _apply(self, event: Event) -> None:
        if event.type is EventType.PUT and event.value is not None:
            old = self._kvs.get(event.key)
            if old is None:
                self._keys.add(event.key)
            self._kvs[event.key] = KeyValue(
                event.key,
                event.value,
                old.create_revision if old else event.revision,
                event.revision,
                old.version + 1 if old else 1,
            )
        elif self._kvs.pop(event.key, None) is not None:
            self._keys.remove(event.key)
        self._advance(event.revision)
        self._notify(event)

    def _advance(self, revision: int) -> None:
        if revision > self.at_revision:
            self.at_revision = revision
        advanced, self._advanced = self._advanced, asyncio.Event()
        advanced.set()

    def _notify(self, event: Event | None) -> None:
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:  # a consumer's bug must not stop the copy
                log.exception("store cache listener failed")

    # -- waiting -------------------------------------------------------------------------------------

    async def wait_for(self, revision: int) -> None:
        """Until the copy has reached ``revision`` (503 after :data:`WAIT_LIMIT`)."""
        if self._task is None or self._task.done():
            await self.start()
        if self.at_revision >= revision:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + WAIT_LIMIT
        while self.at_revision < revision:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise StoreUnavailableError(
                    f"state store unavailable: cache at revision {self.at_revision}, store at {revision}"
                    + (f" ({self._failure})" if self._failure else "")
                )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._advanced.wait(), remaining)

    async def fresh(self) -> int:
        """Wait until the copy holds every write committed ``staleness`` seconds before; its revision."""
        now = asyncio.get_running_loop().time()
        if now - self._confirmed_at >= self.staleness:
            await self.wait_for(await self._checked(self.inner.revision()))
            self._confirmed_at = max(self._confirmed_at, now)
        else:
            await self.wait_for(self._written)
        return self.at_revision

    async def _checked(self, call: Awaitable[T]) -> T:
        """``call`` on the store; a failure drops the confirmation (the next read asks the store)."""
        try:
            return await call
        except StoreError:
            self._confirmed_at = -math.inf
            raise

    async def catch_up(self, revision: int) -> None:
        await self.wait_for(revision)

    async def refresh(self) -> bool:
        before = self.at_revision
        self._confirmed_at = -math.inf  # a refusal is worth one round trip to be sure of
        await self.fresh()
        return self.at_revision > before

    # -- the Store interface ---------------------------------------------------------------------------

    async def get(self, key: str) -> KeyValue | None:
        await self.wait_for(self._written)
        return self._kvs.get(key)

    async def list(self, prefix: str) -> tuple[list[KeyValue], int]:
        await self.wait_for(self._written)
        return self.range(prefix), self.at_revision

    def range(self, prefix: str) -> list[KeyValue]:
        """Every key under ``prefix`` in key order, as the copy holds it now (no waiting)."""
        kvs = self._kvs
        end = prefix_end(prefix) if prefix else None
        return [kvs[k] for k in self._keys.irange(prefix, end, inclusive=(True, False))]

    def value(self, key: str) -> KeyValue | None:
        """``key`` as the copy holds it now (no waiting)."""
        return self._kvs.get(key)

    async def txn(self, compares: list[Compare], ops: list[Op]) -> TxnResult:
        sent = asyncio.get_running_loop().time()
        result = await self._checked(self.inner.txn(compares, ops))
        if result.succeeded and ops:
            # Every write committed before this one was sent has a lower revision.
            self._written = max(self._written, result.revision)
            self._confirmed_at = max(self._confirmed_at, sent)
        return result

    def watch(self, prefix: str, since: int) -> AsyncIterator[Event]:
        return self.inner.watch(prefix, since)

    async def revision(self) -> int:
        return await self._checked(self.inner.revision())

    async def lease_grant(self, ttl: float) -> int:
        return await self._checked(self.inner.lease_grant(ttl))

    async def lease_keepalive(self, lease: int) -> None:
        await self._checked(self.inner.lease_keepalive(lease))

    async def lease_revoke(self, lease: int) -> None:
        await self._checked(self.inner.lease_revoke(lease))
        # Revoking deletes the lease's keys at a new revision this process caused.
        self._written = max(self._written, await self.inner.revision())


def cached(store: Store) -> CachedStore:
    """``store`` itself if it is already a cache, else a new cache over it."""
    return store if isinstance(store, CachedStore) else CachedStore(store)
