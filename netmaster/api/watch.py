"""The snapshot and watch stream: how agents (and any consumer) follow netmaster's state.

Kubernetes' list+watch: ``GET /api/v1/snapshot`` returns every object and endpoint at one revision;
``GET /api/v1/watch?since=REV`` then streams each change after it as a JSON line, with periodic
``bookmark`` lines carrying the latest revision so a reconnecting client resumes exactly where it
stopped. A revision the store no longer keeps answers 410 and the client takes a new snapshot; so
does a revision newer than the store's (the store was replaced by an import or a restore).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
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


def encode_event(event: Event) -> dict[str, Any] | None:
    value = json.loads(event.value) if event.type is EventType.PUT and event.value else None
    described = describe(event.key, value)
    if described is None:
        return None
    return {"type": event.type.value, "revision": event.revision, **described}


def add_watch_routes(app: FastAPI, store: CachedStore) -> None:
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
            current = await store.revision()
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
        queue: asyncio.Queue[Event | BaseException] = asyncio.Queue()
        pump = asyncio.create_task(_pump(store, since, queue))
        # The store reports a compacted revision when the watch starts: wait briefly for that
        # verdict so it can still be a 410 instead of a broken 200 stream.
        await asyncio.wait([pump], timeout=0.05)
        if pump.done() and isinstance(pump.exception(), CompactedError):
            return JSONResponse({"error": str(pump.exception())}, status_code=410)
        if pump.done() and pump.exception() is not None:
            return JSONResponse({"error": f"state store unavailable: {pump.exception()}"}, status_code=503)
        return StreamingResponse(_lines(store, since, queue, pump), media_type="application/x-ndjson")


async def _pump(store: Store, since: int, queue: asyncio.Queue[Event | BaseException]) -> None:
    try:
        async for event in store.watch(keys.ROOT, since):
            queue.put_nowait(event)
    except Exception as exc:  # surfaced to the stream, which ends so the client reconnects
        # Including CompactedError: the store may report it after the 200 has gone out (etcd answers
        # a watch in a few ms, but not always within the wait above). Dropping it would leave the
        # stream sending bookmarks past events it never delivered.
        queue.put_nowait(exc)
        raise


async def _lines(
    store: Store, since: int, queue: asyncio.Queue[Event | BaseException], pump: asyncio.Task[None]
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

