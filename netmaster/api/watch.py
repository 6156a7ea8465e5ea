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
import heapq
import json
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any

from fastapi import FastAPI, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from contiv_api.netmaster_client import AGENT_HEADER
from contiv_api.watch_format import bookmark_line, change_line, encode_line, error_line
from netmaster.api.span import GLOBAL, RULE, EndpointMeta, Span, SpanChange, SpanIndex, endpoint_meta
from netmaster.errors import UnavailableError
from netmaster.store import keys
from netmaster.store.base import CompactedError, Event, EventType, Store, StoreError
from netmaster.store.cache import CachedStore

BOOKMARK_INTERVAL = 5.0  # seconds: an idle watch stream sends a bookmark at least this often ...
PROGRESS_INTERVAL = 2.0  # ... and within this long after the state moved on without an event for it
CHUNK = 64 << 10  # bytes of queued lines a stream sends in one write
RING_EVENTS = 10_000  # recent events kept for watchers resuming from a recent revision ...
RING_BYTES = 8 << 20  # ... within this many bytes of encoded lines
WATCHER_BUFFER = 8 << 20  # bytes of encoded events one watcher may have waiting before it is cut off
SNAPSHOTS_KEPT = 64  # snapshot bodies kept for the current revision (one per span asked for)
#: Seconds a stream's new endpoint lines may wait so that those arriving meanwhile go in the same write:
#: a write (the ASGI stack, a send() call, waking the stream's task) costs far more than its bytes, and
#: with a thousand agents each event is otherwise one write per interested agent. Off by default
#: (``--watch-flush``): a large cluster's setting.
FLUSH_INTERVAL = 0.0


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


def encode_described(described: dict[str, Any]) -> bytes:
    """An object's part of a line or of a snapshot, compact (see contiv_api.watch_format.change_line)."""
    return json.dumps(described, separators=(",", ":")).encode()


#: Keys the span index follows (netmaster.api.span): endpoints, span records, rules, global settings.
SPAN_KEYS = (keys.EP, keys.SPAN, RULE, GLOBAL)
#: Keys whose value the hub parses: what it shows and what the span index follows.
PARSED = (*SHOWN, keys.SPAN)


class _Entry:
    """One event of the ring, encoded once into the line every watcher sends."""

    __slots__ = ("count", "endpoint", "line", "revision", "span")

    def __init__(self, revision: int, line: bytes, endpoint: EndpointMeta | None = None,
                 span: SpanChange | None = None) -> None:  # fmt: skip
        self.revision = revision
        # Internal keys (allocators, counters): b"", nothing to send; the idle bookmark carries the revision.
        self.line = line
        self.endpoint = endpoint  # the endpoint the event concerns (its record before a delete), if any
        self.span = span  # the hosts whose span the event changed, if any
        self.count = 1  # lines in ``line`` (a widened span's endpoints go as one entry)


class Subscriber:
    """One HTTP watcher's bounded buffer of encoded events; an agent's (``host``) only gets its span.

    ``notify`` is called when lines are queued (the hub wakes the stream, at once or at its next
    flush); being cut off or closed wakes it at once."""

    def __init__(self, limit: int, host: str | None = None, notify: Callable[[Subscriber], None] | None = None) -> None:
        self.limit = limit
        self.host = host
        self.notify = notify or _wake
        self.span = Span()
        self.routes: set[tuple[str, str]] = set()
        self.queue: deque[_Entry] = deque()
        self.buffered = 0
        self.overflowed = False
        self.closed_reason: str | None = None
        self.wake = asyncio.Event()
        self.sent = 0  # the revision every change up to which the stream has sent (a line or a bookmark)
        self.written = 0.0  # loop time of the stream's last line
        self.bookmark_due = False  # set by the hub's ticker: send a bookmark when nothing is queued

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
        self.notify(self)
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


def _wake(sub: Subscriber) -> None:
    sub.wake.set()


class WatchHub:
    """Every HTTP watcher of this netmaster, fed from the store cache's one watch.

    An agent's watcher (the request names its host in ``X-Contiv-Agent``) gets every object but only
    the endpoints of its host's span (:mod:`netmaster.api.span`); watchers are indexed by what they
    cover, so an endpoint event costs only its interested watchers. When an event widens a host's
    span (its first endpoint on a network, a tenant becoming wide), the endpoints it now covers are
    sent to that host's watchers at once as put lines, oldest first (their own revisions, all below
    the event's, so a client's resume point never moves past an event it has not had); the event
    itself follows. A span never narrows while netmaster runs except when a tenant stops being
    wide or an old endpoint without a span record goes: the host's watchers then get a 410 and re-list.

    Snapshots are assembled from each object's encoding (made once per change), and one per span is
    kept for the current revision, so agents asking at the same revision share the bytes.
    """

    def __init__(
        self,
        cache: CachedStore,
        *,
        ring: int = RING_EVENTS,
        ring_bytes: int = RING_BYTES,
        buffer: int = WATCHER_BUFFER,
        network_grain: bool = False,
        flush: float = FLUSH_INTERVAL,
    ) -> None:
        self.cache = cache
        self.buffer = buffer
        self.flush = flush
        self._due: set[Subscriber] = set()  # streams with lines queued since the last flush
        self._flush_at: asyncio.TimerHandle | None = None
        self.ring: deque[_Entry] = deque()
        self.ring_limits = (ring, ring_bytes)
        self.ring_size = 0  # bytes of the lines in the ring
        self.oldest = cache.at_revision  # the ring holds every event after this revision
        self.subscribers: set[Subscriber] = set()
        self.unfiltered: set[Subscriber] = set()  # watchers that get every event
        self.by_host: dict[str, set[Subscriber]] = {}  # agents' watchers by host
        self.routes: dict[tuple[str, str], set[Subscriber]] = {}  # ("n", network) / ("t", tenant) -> watchers
        self.overflows = 0
        self.span_resyncs = 0  # agents' watchers sent to re-list because their span narrowed
        self.span_adds = 0  # endpoints sent to watchers because their span widened
        self.index = SpanIndex(network_grain=network_grain)
        self.described: dict[str, bytes] = {}  # store key -> its encoded description, once per change
        # network -> endpoint key -> (revision, its put line; None until a widened span needs it), in
        # revision order: what a span that gains the network is sent, without sorting or re-encoding.
        self.lines: dict[str, dict[str, tuple[int, bytes | None]]] = {}
        self._snapshots: dict[Span | None, bytes] = {}  # per span (None: all), until the next event
        self._ticker: asyncio.Task[None] | None = None
        self._bookmark = (-1, b"")
        self._load_index()
        cache.add_listener(self._on_event)

    def _load_index(self) -> None:
        self.described.clear()
        self._snapshots.clear()
        self.lines.clear()
        self.index.load((kv.key, json.loads(kv.value)) for prefix in SPAN_KEYS for kv in self.cache.range(prefix))
        for kv in sorted(self.cache.range(keys.EP), key=lambda kv: kv.mod_revision):
            ep_key = kv.key[len(keys.EP) :]
            meta = self.index.endpoints.get(ep_key)
            if meta is not None:
                self.lines.setdefault(meta.network, {})[ep_key] = (kv.mod_revision, None)

    def _track(self, ep_key: str, old: EndpointMeta | None, new: EndpointMeta | None, revision: int,
               line: bytes) -> None:  # fmt: skip
        """Keep ``lines`` in revision order: a changed endpoint moves to the end of its network's."""
        if old is not None and (run := self.lines.get(old.network)) is not None:
            run.pop(ep_key, None)
            if not run:
                del self.lines[old.network]
        if new is not None:
            self.lines.setdefault(new.network, {})[ep_key] = (revision, line)

    def _described(self, key: str) -> bytes | None:
        body = self.described.get(key)
        if body is None:
            kv = self.cache.value(key)
            described = describe(key, json.loads(kv.value)) if kv is not None else None
            if described is None:
                return None
            body = self.described[key] = encode_described(described)
        return body

    def _on_event(self, event: Event | None) -> None:
        if event is None:
            # The cache listed again (compaction, outage): what happened in between is unknown, so
            # every watcher re-lists, as after a 410.
            self.ring.clear()
            self.ring_size = 0
            self.oldest = self.cache.at_revision
            for sub in list(self.subscribers):
                sub.close("the state store was listed again; take a new snapshot")
                self._drop(sub)
            self._load_index()
            return
        key = event.key
        self._snapshots.clear()  # even within a revision: a transaction's events come one by one
        put = event.type is EventType.PUT and event.value
        value = json.loads(event.value) if put and key.startswith(PARSED) else None
        described = describe(key, value) if key.startswith(SHOWN) else None
        line = b""
        self.described.pop(key, None)
        if described is not None:
            body = encode_described(described)
            line = change_line(event.type.value, event.revision, body)
            if value is not None:
                self.described[key] = body
        endpoint = None
        if key.startswith(keys.EP):
            ep_key = key[len(keys.EP) :]
            previous = self.index.endpoints.get(ep_key)
            endpoint = endpoint_meta(value) if value is not None else previous
            self._track(ep_key, previous, endpoint if value is not None else None, event.revision, line)
        change = self.index.apply(key, value) if key.startswith(SPAN_KEYS) else None
        entry = _Entry(event.revision, line, endpoint, change or None)
        self._remember(entry)
        if change:
            self._respan(change, key)
        if line:
            self._deliver(entry)

    def _remember(self, entry: _Entry) -> None:
        self.ring.append(entry)
        self.ring_size += len(entry.line)
        events, size = self.ring_limits
        while len(self.ring) > events or (self.ring_size > size and len(self.ring) > 1):
            dropped = self.ring.popleft()
            self.ring_size -= len(dropped.line)
            # Every event after ``oldest`` is still in the ring (later events of that revision too).
            self.oldest = dropped.revision

    def _deliver(self, entry: _Entry) -> None:
        if entry.endpoint is None:
            groups: tuple[Iterable[Subscriber], ...] = (self.subscribers,)
        else:  # disjoint: a filtered watcher is reached by one route per endpoint at most
            ep = entry.endpoint
            groups = (self.unfiltered, self.routes.get(("n", ep.network), ()), self.routes.get(("t", ep.tenant), ()))
        for group in groups:
            for sub in list(group):
                if not sub.offer(entry):
                    self._drop(sub)
                    self.overflows += 1
                elif entry.endpoint is None:
                    # Not an endpoint (the bulk of the fan-out): rare, and what an agent may be waiting
                    # for (the network of the endpoint it is adding), so it goes out now, with whatever
                    # endpoint lines wait before it.
                    sub.wake.set()

    def _respan(self, change: SpanChange, current: str) -> None:
        """The spans ``change`` touched: widened ones get the endpoints they now cover (not the
        event's own, ``current``, which is delivered next); narrowed ones re-list."""
        if change.every:
            subs = [s for s in self.subscribers if s.host is not None]
        else:
            subs = [s for h in change.hosts for s in self.by_host.get(h, ())]
        spans: dict[str, Span] = {}
        added: dict[tuple[Span, Span], list[_Entry]] = {}
        for sub in subs:
            assert sub.host is not None
            old = sub.span
            new = spans.get(sub.host) or spans.setdefault(sub.host, self.index.span(sub.host))
            if new == old:
                continue
            if not old.within(new):
                self.span_resyncs += 1
                sub.close("this host's span narrowed; take a new snapshot")
                self._drop(sub)
                continue
            self._route(sub, new)
            entry = added.get((old, new))
            if entry is None:
                entry = added[(old, new)] = self._synthetic_adds(old, new, current)
            self.span_adds += entry.count
            if entry.line and not sub.offer(entry):
                self._drop(sub)
                self.overflows += 1

    def _synthetic_adds(self, old: Span, new: Span, current: str) -> _Entry:
        """One entry of the put lines of the endpoints ``new`` covers and ``old`` does not, oldest
        first; its revision is the newest of theirs."""
        skip = current[len(keys.EP) :] if current.startswith(keys.EP) else None
        runs = [self._filled(n) for n in self.index.newly_covered_networks(old, new) if n in self.lines]
        items: Iterable[tuple[str, tuple[int, bytes | None]]] = (
            runs[0].items() if len(runs) == 1 else heapq.merge(*(r.items() for r in runs), key=lambda i: i[1][0])
        )
        lines, newest = [], 0
        for ep_key, (revision, line) in items:
            if line and ep_key != skip:
                lines.append(line)
                newest = revision
        entry = _Entry(newest, b"".join(lines))
        entry.count = len(lines)
        return entry

    def _filled(self, network: str) -> dict[str, tuple[int, bytes | None]]:
        """The network's run of lines, each encoded (once: an endpoint's event line is kept)."""
        run = self.lines[network]
        for ep_key, (revision, line) in run.items():
            if line is None and (body := self._described(keys.EP + ep_key)) is not None:
                run[ep_key] = (revision, change_line("put", revision, body))  # a value change: order kept
        return run

    def _route(self, sub: Subscriber, span: Span) -> None:
        routes = span.routes()
        for route in sub.routes - routes:
            self.routes[route].discard(sub)
            if not self.routes[route]:
                del self.routes[route]
        for route in routes - sub.routes:
            self.routes.setdefault(route, set()).add(sub)
        sub.span, sub.routes = span, routes

    def _drop(self, sub: Subscriber) -> None:
        self.subscribers.discard(sub)
        self.unfiltered.discard(sub)
        if sub.host is not None:
            self.by_host.get(sub.host, set()).discard(sub)
            if not self.by_host.get(sub.host, True):
                del self.by_host[sub.host]
            self._route(sub, Span())

    def _notify(self, sub: Subscriber) -> None:
        """Wake ``sub``'s stream at the next flush (one timer for every stream); at once without a
        flush interval or when it has a write's worth queued (a burst must not fill its buffer)."""
        if self.flush <= 0 or sub.buffered >= min(CHUNK, sub.limit // 2):
            sub.wake.set()  # a full write's worth (or half its buffer) does not wait
            return
        self._due.add(sub)
        if self._flush_at is None:
            self._flush_at = asyncio.get_running_loop().call_later(self.flush, self._flush_due)

    def _flush_due(self) -> None:
        self._flush_at = None
        due, self._due = self._due, set()
        for sub in due:
            sub.wake.set()

    def bookmark(self, revision: int) -> bytes:
        """The bookmark line of ``revision``, encoded once for every stream the ticker wakes."""
        if self._bookmark[0] != revision:
            self._bookmark = (revision, bookmark_line(revision))
        return self._bookmark[1]

    async def _tick(self) -> None:
        """Bookmarks for idle streams, from one task instead of a timer per stream: a stream with
        nothing queued that has not sent the cache's revision yet (an agent's skips the events outside
        its span) gets one within PROGRESS_INTERVAL, so its client can tell it is current; any stream
        silent for BOOKMARK_INTERVAL gets one, so its client can tell it is alive."""
        loop = asyncio.get_running_loop()
        while self.subscribers:
            await asyncio.sleep(PROGRESS_INTERVAL)
            now, revision = loop.time(), self.cache.at_revision
            for sub in list(self.subscribers):
                if not sub.queue and (sub.sent < revision or now - sub.written >= BOOKMARK_INTERVAL):
                    sub.bookmark_due = True
                    sub.wake.set()

    def subscribe(self, since: int, host: str | None = None) -> Subscriber | None:
        """A subscriber with every event after ``since`` queued (of ``host``'s span, for an agent's);
        None if the ring does not reach back. An agent's whose span changed after ``since`` is closed
        at once: what it holds may differ from its span now, so it re-lists."""
        if since < self.oldest:
            return None
        sub = Subscriber(self.buffer, host, self._notify)
        backlog = []
        for entry in reversed(self.ring):  # from the newest: a watch resumes near the present
            if entry.revision <= since:
                break
            backlog.append(entry)
        backlog.reverse()
        if host is not None:
            if any(e.span is not None and (e.span.every or host in e.span.hosts) for e in backlog):
                self.span_resyncs += 1
                sub.close(f"the span of host {host} changed after revision {since}; take a new snapshot")
                return sub
            sub.span = self.index.span(host)
        for entry in backlog:
            if not entry.line or (host is not None and entry.endpoint and not sub.span.covers(entry.endpoint)):
                continue
            if not sub.offer(entry):
                self.overflows += 1
                return sub  # already too far behind: it answers 410 at once
        sub.sent, sub.written = since, asyncio.get_running_loop().time()
        self.subscribers.add(sub)
        if self._ticker is None or self._ticker.done():
            self._ticker = asyncio.get_running_loop().create_task(self._tick(), name="watch-bookmarks")
        if host is None:
            self.unfiltered.add(sub)
        else:
            self.by_host.setdefault(host, set()).add(sub)
            span, sub.span = sub.span, Span()
            self._route(sub, span)
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        self._drop(sub)

    @property
    def buffered(self) -> int:
        return sum(s.buffered for s in self.subscribers)

    def snapshot(self, host: str | None = None) -> tuple[int, bytes]:
        """(revision, body) of ``GET /api/v1/snapshot`` at the cache's revision: every object, and the
        endpoints of ``host``'s span (every endpoint without a host). Built once per revision and span."""
        revision = self.cache.at_revision
        span = self.index.span(host) if host is not None else None
        body = self._snapshots.get(span)
        if body is None:
            if span is None:
                endpoints = [kv.key for kv in self.cache.range(keys.EP)]
            else:
                endpoints = [keys.EP + k for k in sorted(self.index.covered(span))]
            others = [kv.key for prefix in (keys.ACI_SYNC, keys.AGENTS, keys.OBJ) for kv in self.cache.range(prefix)]
            parts = [b for k in (*others, *endpoints) if (b := self._described(k)) is not None]
            body = b'{"revision":%d,"objects":[%s]}' % (revision, b",".join(parts))
            if len(self._snapshots) >= SNAPSHOTS_KEPT:
                self._snapshots.clear()
            self._snapshots[span] = body
        return revision, body


def add_watch_routes(app: FastAPI, store: CachedStore, hub: WatchHub) -> None:
    @app.get("/api/v1/snapshot", tags=["watch"])
    async def snapshot(request: Request) -> Response:
        try:
            await store.fresh()
        except StoreError as exc:
            raise UnavailableError(f"state store unavailable: {exc}") from exc
        revision, body = hub.snapshot(request.headers.get(AGENT_HEADER) or None)
        return Response(body, media_type="application/json", headers={"X-Revision": str(revision)})

    @app.get("/api/v1/watch", tags=["watch"])
    async def watch(request: Request, since: int = Query(0, ge=0, le=2**62)) -> Any:
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
        host = request.headers.get(AGENT_HEADER) or None
        sub = hub.subscribe(since, host)
        if sub is not None and sub.closed_reason is not None:
            return JSONResponse({"error": sub.closed_reason}, status_code=410)
        if sub is not None:
            return StreamingResponse(_hub_lines(hub, sub), media_type="application/x-ndjson")
        if host is not None:
            # The store's own watch knows nothing of spans: an agent re-lists instead.
            return JSONResponse({"error": f"revision {since} is older than this netmaster's recent events; "
                                 "take a new snapshot"}, status_code=410)  # fmt: skip
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


async def _hub_lines(hub: WatchHub, sub: Subscriber) -> AsyncIterator[bytes]:
    loop = asyncio.get_running_loop()
    try:
        while True:
            if sub.queue:
                # Whatever is queued goes in one write (up to CHUNK bytes): every write passes the whole
                # ASGI stack, and a burst (a span's added endpoints) would otherwise cost one per line.
                lines, size = [], 0
                while size < CHUNK and (entry := sub.take()) is not None:
                    # A span's added endpoints carry their own, older revisions: ``sent`` never goes back.
                    sub.sent = max(sub.sent, entry.revision)
                    lines.append(entry.line)
                    size += len(entry.line)
                if size:
                    sub.written = loop.time()
                    yield b"".join(lines)
                continue
            if sub.overflowed:
                yield error_line("this watcher fell too far behind (its buffer is full); take a new snapshot", 410)
                return
            if sub.closed_reason is not None:
                yield error_line(sub.closed_reason, 410)
                return
            if sub.bookmark_due:
                # Nothing queued: every event up to the cache's revision has been offered (and sent).
                sub.bookmark_due = False
                sub.sent, sub.written = max(sub.sent, hub.cache.at_revision), loop.time()
                yield hub.bookmark(sub.sent)
                continue
            sub.wake.clear()
            await sub.wake.wait()
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
