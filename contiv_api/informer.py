"""A local cache of netmaster's state, kept current from the watch stream, with change handlers.

Agents program hosts from this cache and react to its handlers, instead of each handling list, watch,
reconnects, compaction and duplicates itself (Kubernetes calls this an informer):

* ``on_add(state)``, ``on_update(old, new)``, ``on_delete(old)``: one call per real change. Events
  repeated after a reconnect change nothing, so they call nothing;
* after a re-list (first start, or a 410 when the agent fell too far behind), the new snapshot is
  diffed against the cache and turned into the same add/update/delete calls, then
  ``on_resync(revision)``: a handler-only consumer converges without special code;
* ``wait_synced()`` returns once the first snapshot is in the cache (start programming after it).

Handlers may be plain functions or coroutines. One that raises is logged and the informer goes on:
a bug in one handler must not stop the host from following state.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable, Collection
from typing import Any

from contiv_api.netmaster_client import NetmasterClient
from contiv_api.watch_format import Change, ObjectState, Progress, Resync

log = logging.getLogger(__name__)

Handler = Callable[..., Any]
CacheKey = tuple[str, str]  # (kind, key)


class Informer:
    def __init__(
        self,
        client: NetmasterClient,
        *,
        kinds: Collection[str] | None = None,
        on_add: Handler | None = None,
        on_update: Handler | None = None,
        on_delete: Handler | None = None,
        on_resync: Handler | None = None,
    ) -> None:
        self.client = client
        self.kinds = frozenset(kinds) if kinds is not None else None
        self.on_add = on_add
        self.on_update = on_update
        self.on_delete = on_delete
        self.on_resync = on_resync
        self.cache: dict[CacheKey, ObjectState] = {}
        self.revision: int | None = None  # the newest revision the cache reflects
        self._complete: int | None = None  # every change up to here is cached: resume point
        self.resyncs = 0  # snapshots taken (1 at start; more after compaction)
        self._synced = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    # -- reading the cache -------------------------------------------------------------------------------

    def get(self, kind: str, key: str) -> ObjectState | None:
        return self.cache.get((kind, key))

    def list(self, kind: str) -> list[ObjectState]:
        return [s for (k, _), s in sorted(self.cache.items()) if k == kind]

    @property
    def synced(self) -> bool:
        return self._synced.is_set()

    async def wait_synced(self) -> None:
        """Until the first snapshot is cached (bound it with ``asyncio.timeout`` if needed)."""
        await self._synced.wait()

    # -- lifecycle -------------------------------------------------------------------------------------

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self.run(), name="informer")

    async def stop(self) -> None:
        """Stop following; the cache and revision stay, and ``start`` resumes from that revision."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def __aenter__(self) -> Informer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def run(self) -> None:
        """Follow netmaster until cancelled (resuming from the cached revision, if any)."""
        stream = self.client.follow(self._complete)
        try:
            async for item in stream:
                if isinstance(item, Resync):
                    await self._resync(item)
                elif isinstance(item, Change):
                    await self._change(item)
                elif isinstance(item, Progress):
                    self.revision = max(self.revision or 0, item.revision)
                    self._complete = max(self._complete or 0, item.revision)
        finally:
            await stream.aclose()

    # -- applying the stream -----------------------------------------------------------------------------

    def _wanted(self, state: ObjectState) -> bool:
        return self.kinds is None or state.kind in self.kinds

    async def _change(self, change: Change) -> None:
        self.revision = max(self.revision or 0, change.revision)
        # Other changes of this revision may still come: only the one before is known complete.
        self._complete = max(self._complete or 0, change.revision - 1)
        new = change.state
        if not self._wanted(new):
            return
        old = self.cache.get(new.id)
        if change.type == "delete":
            if old is not None:
                del self.cache[new.id]
                await self._call(self.on_delete, old)
        elif old is None:
            self.cache[new.id] = new
            await self._call(self.on_add, new)
        elif old != new:
            self.cache[new.id] = new
            await self._call(self.on_update, old, new)

    async def _resync(self, snap: Resync) -> None:
        fresh = {s.id: s for s in snap.objects if self._wanted(s)}
        for cache_key, old in list(self.cache.items()):
            if cache_key not in fresh:
                del self.cache[cache_key]
                await self._call(self.on_delete, old)
        for cache_key, new in fresh.items():
            old = self.cache.get(cache_key)
            self.cache[cache_key] = new
            if old is None:
                await self._call(self.on_add, new)
            elif old != new:
                await self._call(self.on_update, old, new)
        self.revision = self._complete = snap.revision
        self.resyncs += 1
        self._synced.set()
        await self._call(self.on_resync, snap.revision)

    async def _call(self, handler: Handler | None, *args: Any) -> None:
        if handler is None:
            return
        try:
            result = handler(*args)
            if inspect.isawaitable(result):
                await result
        except Exception:
            log.exception("informer handler %s failed", getattr(handler, "__name__", handler))
