"""The snapshot and watch stream: how agents (and any consumer) follow netmaster's state.

Kubernetes' list+watch: ``GET /api/v1/snapshot`` returns every object and endpoint at one revision;
``GET /api/v1/watch?since=REV`` then streams each change after it as a JSON line, with periodic
``bookmark`` lines carrying the latest revision so a reconnecting client resumes exactly where it
stopped. A revision the store no longer keeps answers 410 and the client takes a new snapshot; so
does a revision newer than the store's (the store was replaced by an import or a restore).

Fan-out like kube-apiserver's watch cache (:class:`WatchHub`): every HTTP watcher of a netmaster is
fed from the store cache's single watch, each event is encoded once (into the line every watcher
sends), and recent events are kept in a ring so a watcher resuming from a recent revision is served
from memory. Each watcher has a bounded buffer: one that does not keep up (or never reads) is cut
off with a 410 line once its buffer is full, and re-lists, instead of growing netmaster's memory.
Only a revision older than the ring falls back to a watch of the store of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import deque
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Query
from fastapi.responses import JSONResponse, StreamingResponse

from contiv_api.watch_format import bookmark_line, encode_line, error_line
from netmaster.errors import UnavailableError
from netmaster.store import keys
from netmaster.store.base import CompactedError, Event, EventType, Store, StoreError
from netmaster.store.cache import CachedStore

BOOKMARK_INTERVAL = 5.0
RING_EVENTS = 10_000  # recent events kept for watchers resuming from a recent revision ...
RING_BYTES = 8 << 20  # ... within this many bytes of encoded lines
WATCHER_BUFFER = 8 << 20  # bytes of encoded events one watcher may have waiting before it is cut off


def describe(store_key: str, value: Any) -> dict[str, Any] | None:
    """(kind, key, object, status) of a watched store key, or None for internal keys."""
    if store_key.startswith(keys.OBJ):
        kind, _, key = store_key[len(keys.OBJ) :].partition("/")
        if value is None:
            return {"kind": kind, "key": key, "object": None, "status": None}
        return {"kind": kind, "key": key, "object": {"key": key, **value["config"]}, "status": value["status"]}
    if store_key.startswith(keys.EP):
        return {"kind": "endpoint", "key": store_key[len(keys.EP) :], "object": value, "status": None}
    if store_key.startswith(keys.AGENTS):
        return {"kind": "agent", "key": store_key[len(keys.AGENTS) :], "object": value, "status": None}
    if store_key.startswith(keys.ACI_SYNC):  # ACI mode: agents re-announce endpoints after a push
        return {"kind": "aciSync", "key": store_key[len(keys.ACI_SYNC) :], "object": value, "status": None}
    return None


#: Key prefixes the snapshot and watch show (see describe); the rest (allocators, counters) is internal.
SHOWN = (keys.OBJ, keys.EP, keys.AGENTS, keys.ACI_SYNC)


def encode_event(event: Event) -> dict[str, Any] | None:
    if not event.key.startswith(SHOWN):
        return None  # without parsing: allocator records can be large
    value = json.loads(event.value) if event.type is EventType.PUT and event.value else None
    described = describe(event.key, value)
    if described is None:
        return None
    return {"type": event.type.value, "revision": event.revision, **described}


class _Entry:
    """One event of the ring, encoded once into the line every watcher sends."""

    __slots__ = ("line", "revision")

    def __init__(self, event: Event) -> None:
        self.revision = event.revision
        encoded = encode_event(event)
        # Internal keys (allocators, counters): nothing to send; the idle bookmark carries the revision.
        self.line = encode_line(encoded) if encoded is not None else b""


class Subscriber:
    """One HTTP watcher's bounded buffer of encoded events."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.queue: deque[_Entry] = deque()
        self.buffered = 0
        self.overflowed = False
        self.closed_reason: str | None = None
        self.wake = asyncio.Event()

    def offer(self, entry: _Entry) -> bool:
        """Queue ``entry``; False (and the subscriber is done) once its buffer would exceed the limit.

        One event always fits, however large, so a watcher that keeps up is never cut off.
        """
        size = len(entry.line)
        if self.queue and self.buffered + size > self.limit:
            self.overflowed = True
            self.queue.clear()
            self.buffered = 0
            self.wake.set()
            return False
        self.queue.append(entry)
        self.buffered += size
        self.wake.set()
        return True

    def close(self, reason: str) -> None:
        self.closed_reason = reason
        self.wake.set()

    def take(self) -> _Entry | None:
        if not self.queue:
            return None
        entry = self.queue.popleft()
        self.buffered -= len(entry.line)
        return entry


class WatchHub:
    """Every HTTP watcher of this netmaster, fed from the store cache's one watch."""

    def __init__(
        self, cache: CachedStore, *, ring: int = RING_EVENTS, ring_bytes: int = RING_BYTES, buffer: int = WATCHER_BUFFER
    ) -> None:
        self.cache = cache
        self.buffer = buffer
        self.ring: deque[_Entry] = deque()
        self.ring_limits = (ring, ring_bytes)
        self.ring_size = 0  # bytes of the lines in the ring
        self.oldest = cache.at_revision  # the ring holds every event after this revision
        self.subscribers: set[Subscriber] = set()
        self.overflows = 0
        cache.add_listener(self._on_event)

    def _on_event(self, event: Event | None) -> None:
        if event is None:
            # The cache listed again (compaction, outage): what happened in between is unknown, so
            # every watcher re-lists, as after a 410.
            self.ring.clear()
            self.ring_size = 0
            self.oldest = self.cache.at_revision
            for sub in list(self.subscribers):
                sub.close("the state store was listed again; take a new snapshot")
            self.subscribers.clear()
            return
        entry = _Entry(event)
        self.ring.append(entry)
        self.ring_size += len(entry.line)
        events, size = self.ring_limits
        while len(self.ring) > events or (self.ring_size > size and len(self.ring) > 1):
            dropped = self.ring.popleft()
            self.ring_size -= len(dropped.line)
            # Every event after ``oldest`` is still in the ring (later events of that revision too).
            self.oldest = dropped.revision
        for sub in list(self.subscribers):
            if not sub.offer(entry):
                self.subscribers.discard(sub)
                self.overflows += 1

    def subscribe(self, since: int) -> Subscriber | None:
        """A subscriber with every event after ``since`` queued; None if the ring does not reach back."""
        if since < self.oldest:
            return None
        sub = Subscriber(self.buffer)
        for entry in self.ring:
            if entry.revision > since and not sub.offer(entry):
                self.overflows += 1
                return sub  # already too far behind: it answers 410 at once
        self.subscribers.add(sub)
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        self.subscribers.discard(sub)

    @property
    def buffered(self) -> int:
        return sum(s.buffered for s in self.subscribers)


def add_watch_routes(app: FastAPI, store: CachedStore, hub: WatchHub) -> None:
    @app.get("/api/v1/snapshot", tags=["watch"])
    async def snapshot() -> JSONResponse:
        try:
            await store.fresh()
            kvs, revision = await store.list(keys.ROOT)
        except StoreError as exc:
            raise UnavailableError(f"state store unavailable: {exc}") from exc
        objects = [d for kv in kvs if (d := describe(kv.key, json.loads(kv.value))) is not None]
        return JSONResponse({"revision": revision, "objects": objects}, headers={"X-Revision": str(revision)})

    @app.get("/api/v1/watch", tags=["watch"])
    async def watch(since: int = Query(0, ge=0, le=2**62)) -> Any:
        try:
            current = await store.fresh()
        except StoreError as exc:
            raise UnavailableError(f"state store unavailable: {exc}") from exc
        if since > current:
            # A revision this store never reached: it was replaced (netmaster import, a restored
            # backup). Waiting for that revision would silently skip every change until then.
            return JSONResponse(
                {"error": f"revision {since} is newer than the store's ({current}): the store was replaced; "
                 "take a new snapshot"},
                status_code=410,
            )  # fmt: skip
        sub = hub.subscribe(since)
        if sub is not None:
            return StreamingResponse(_hub_lines(hub, sub, since), media_type="application/x-ndjson")
        # Older than the ring: a watch of the store of its own (which may answer "compacted").
        queue: asyncio.Queue[Event | BaseException] = asyncio.Queue(maxsize=RING_EVENTS)
        pump = asyncio.create_task(_pump(store.inner, since, queue))
        # The store reports a compacted revision when the watch starts: wait briefly for that
        # verdict so it can still be a 410 instead of a broken 200 stream.
        await asyncio.wait([pump], timeout=0.05)
        if pump.done() and isinstance(pump.exception(), CompactedError):
            return JSONResponse({"error": str(pump.exception())}, status_code=410)
        if pump.done() and pump.exception() is not None:
            return JSONResponse({"error": f"state store unavailable: {pump.exception()}"}, status_code=503)
        return StreamingResponse(_lines(since, queue, pump), media_type="application/x-ndjson")


async def _hub_lines(hub: WatchHub, sub: Subscriber, since: int) -> AsyncIterator[bytes]:
    last = since
    try:
        while True:
            entry = sub.take()
            if entry is not None:
                last = entry.revision
                if entry.line:
                    yield entry.line
                continue
            if sub.overflowed:
                yield error_line("this watcher fell too far behind (its buffer is full); take a new snapshot", 410)
                return
            if sub.closed_reason is not None:
                yield error_line(sub.closed_reason, 410)
                return
            sub.wake.clear()
            try:
                await asyncio.wait_for(sub.wake.wait(), BOOKMARK_INTERVAL)
            except TimeoutError:
                # Nothing queued: every event up to the cache's revision has been sent.
                last = max(last, hub.cache.at_revision)
                yield bookmark_line(last)
    finally:
        hub.unsubscribe(sub)


async def _pump(store: Store, since: int, queue: asyncio.Queue[Event | BaseException]) -> None:
    try:
        async for event in store.watch(keys.ROOT, since):
            if queue.full():  # a slow watcher: cut off (410) rather than buffer without bound
                raise CompactedError(since, event.revision)
            queue.put_nowait(event)
    except Exception as exc:  # surfaced to the stream, which ends so the client reconnects
        # Including CompactedError: the store may report it after the 200 has gone out (etcd answers
        # a watch in a few ms, but not always within the wait above). Dropping it would leave the
        # stream sending bookmarks past events it never delivered.
        with contextlib.suppress(asyncio.QueueFull):
            queue.put_nowait(exc)
        raise


async def _lines(
    since: int, queue: asyncio.Queue[Event | BaseException], pump: asyncio.Task[None]
) -> AsyncIterator[bytes]:
    last = since
    try:
        while True:
            try:
                item = await asyncio.wait_for(queue.get(), BOOKMARK_INTERVAL)
            except TimeoutError:
                # Only what the store watch has delivered: the store's current revision may be ahead
                # of it (an etcd watch resuming on another member still has events to send), and a
                # client that reconnected from such a bookmark would never see them. Every netmaster
                # write is under the watched prefix, so ``last`` keeps up whenever state changes.
                yield bookmark_line(last)
                continue
            if isinstance(item, BaseException):
                # A compaction: 410, the client must re-list, as for an HTTP 410.
                yield error_line(str(item), 410 if isinstance(item, CompactedError) else None)
                return
            last = item.revision
            encoded = encode_event(item)
            if encoded is not None:
                yield encode_line(encoded)
            elif queue.empty():
                yield bookmark_line(last)
    finally:
        pump.cancel()
        with contextlib.suppress(BaseException):
            await pump
