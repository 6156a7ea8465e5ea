"""``etcd://h1:2379,h2:2379``: the cluster backend, the store interface mapped onto etcd v3.

The interface was shaped after etcd, so the mapping is direct: store revisions are etcd revisions,
a transaction is one etcd Txn whose compares are on ``mod_revision`` (0 meaning "absent", which
etcd expresses as ``create_revision == 0``), a watch is an etcd watch from ``since + 1``, leases are
etcd leases. Connection handling, failover and TLS live in :mod:`netmaster.store.etcd_connection`.

Compaction: etcd keeps every revision until someone compacts. Like the Kubernetes API server, the
store compacts behind itself so that ``history`` revisions stay watchable (``?history=0`` leaves it to
etcd's ``--auto-compaction-*``). Watchers further behind get :class:`CompactedError` and re-list.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import AsyncIterator, Awaitable
from typing import Any

import grpc
from aetcd import rpc

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
    StoreError,
    StoreUnavailableError,
    TxnResult,
)
from netmaster.store.etcd_connection import EtcdConnection, Session, SessionLost
from netmaster.store.etcd_options import EtcdOptions, parse_etcd_url

log = logging.getLogger(__name__)

LIST_PAGE = 2_000  # keys per Range request when listing (keeps responses well under gRPC limits)
_REQUIRE_LEADER = (("hasleader", "true"),)  # etcd cancels the watch if its member loses the leader


def _b(text: str) -> bytes:
    return text.encode()


def _range_end(prefix: bytes) -> bytes:
    """etcd's range end for "every key starting with prefix" (byte-wise, like clientv3.GetPrefixRangeEnd)."""
    end = bytearray(prefix)
    while end:
        if end[-1] < 0xFF:
            end[-1] += 1
            return bytes(end)
        end.pop()
    return b"\0"  # no upper bound


def _prefix_range(prefix: str) -> tuple[bytes, bytes]:
    if not prefix:
        return b"\0", b"\0"  # every key
    key = _b(prefix)
    return key, _range_end(key)


def _kv(kv: rpc.KeyValue) -> KeyValue:
    return KeyValue(
        key=kv.key.decode(),
        value=kv.value.decode(),
        create_revision=kv.create_revision,
        mod_revision=kv.mod_revision,
        version=kv.version,
        lease=kv.lease,
    )


def _event(ev: rpc.Event) -> Event:
    prev = ev.prev_kv.value.decode() if ev.HasField("prev_kv") else None
    if ev.type == rpc.Event.PUT:
        return Event(EventType.PUT, ev.kv.key.decode(), ev.kv.mod_revision, ev.kv.value.decode(), prev)
    return Event(EventType.DELETE, ev.kv.key.decode(), ev.kv.mod_revision, None, prev)


def _store_error(exc: grpc.aio.AioRpcError, what: str) -> StoreError:
    """Map an etcd error that is not a connection failure onto the store's errors."""
    details = exc.details() or exc.code().name
    if exc.code() == grpc.StatusCode.NOT_FOUND and "lease" in details:
        return LeaseNotFoundError(details)
    return StoreError(f"etcd {what} failed: {details}")


class EtcdStore(Store):
    def __init__(self, options: EtcdOptions) -> None:
        self.options = options
        self._conn = EtcdConnection(options)
        self._compacted = 0  # highest revision this store compacted etcd to
        self._compactor: asyncio.Task[None] | None = None

    @classmethod
    def from_url(cls, url: str) -> EtcdStore:
        return cls(parse_etcd_url(url))

    def __repr__(self) -> str:
        return f"EtcdStore({self.options.describe()})"

    @property
    def endpoint(self) -> str | None:
        """The etcd member this store talks to right now."""
        return self._conn.endpoint

    async def _unary(self, what: str, method: str, request: object, *, idempotent: bool = True) -> Any:
        """Call ``<stub>.<method>`` (e.g. ``kv.Range``) with a deadline, failover and error mapping."""
        stub_name, rpc_name = method.split(".")
        timeout = self.options.timeout

        def send(session: Session) -> Awaitable[Any]:
            return getattr(getattr(session, stub_name), rpc_name)(request, timeout=timeout, metadata=session.metadata)

        try:
            return await self._conn.call(what, send, idempotent=idempotent)
        except grpc.aio.AioRpcError as exc:
            raise _store_error(exc, what) from exc

    # -- keys ------------------------------------------------------------------------------------------

    async def get(self, key: str) -> KeyValue | None:
        resp = await self._unary(f"get {key}", "kv.Range", rpc.RangeRequest(key=_b(key)))
        return _kv(resp.kvs[0]) if resp.kvs else None

    async def list(self, prefix: str) -> tuple[list[KeyValue], int]:
        start, end = _prefix_range(prefix)
        out: list[KeyValue] = []
        revision = 0  # the first page fixes the revision every later page is read at
        while True:
            request = rpc.RangeRequest(key=start, range_end=end, limit=LIST_PAGE, revision=revision)
            try:
                resp = await self._unary(f"list {prefix}", "kv.Range", request)
            except StoreError as exc:
                if "compacted" in str(exc):
                    raise CompactedError(revision, revision) from exc
                raise
            if not revision:
                revision = resp.header.revision
            out.extend(_kv(kv) for kv in resp.kvs)
            if not resp.more or not resp.kvs:
                return out, revision
            start = resp.kvs[-1].key + b"\0"

    async def revision(self) -> int:
        resp = await self._unary("revision", "kv.Range", rpc.RangeRequest(key=b"\0", count_only=True))
        return resp.header.revision

    async def txn(self, compares: list[Compare], ops: list[Op]) -> TxnResult:
        request = rpc.TxnRequest(
            compare=[_compare(c) for c in compares],
            success=[_request_op(op) for op in ops],
            # On failure read the compared keys in the same revision, to report which ones moved.
            failure=[rpc.RequestOp(request_range=_failure_range(c)) for c in compares],
        )  # fmt: skip
        resp = await self._unary("transaction", "kv.Txn", request, idempotent=not ops)
        revision = resp.header.revision
        if not resp.succeeded:
            failed = []
            for cmp, r in zip(compares, resp.responses, strict=True):
                kvs = r.response_range.kvs
                if (bool(kvs) if cmp.prefix else (kvs[0].mod_revision if kvs else 0) != cmp.mod_revision):
                    failed.append(cmp.key)
            return TxnResult(False, revision, failed)
        if ops:
            self._maybe_compact(revision)
        return TxnResult(True, revision)

    # -- watch -----------------------------------------------------------------------------------------

    async def watch(self, prefix: str, since: int) -> AsyncIterator[Event]:  # type: ignore[override]
        """etcd watch from ``since + 1``; resumes on another endpoint from the last event it delivered."""
        start, end = _prefix_range(prefix)
        last = since
        loop = asyncio.get_running_loop()
        outage_since: float | None = None
        while True:
            try:
                session = await self._conn.session()
                async for event in self._watch_session(session, start, end, last):
                    outage_since = None
                    if isinstance(event, Event):
                        last = event.revision
                        yield event
                    else:
                        last = max(last, event)
            except (StoreUnavailableError, SessionLost) as exc:
                if self._conn.closed:
                    return
                # Members come and go (restart, failover): keep resuming for up to one timeout.
                outage_since = loop.time() if outage_since is None else outage_since
                if loop.time() - outage_since > self.options.timeout:
                    raise StoreUnavailableError(
                        f"etcd unavailable: watch of {prefix!r} lost ({exc}); "
                        f"endpoints {', '.join(self.options.endpoints)}"
                    ) from exc
                await asyncio.sleep(0.05)
            except StoreError:
                if self._conn.closed:
                    return
                raise

    async def _watch_session(self, session: Session, start: bytes, end: bytes, last: int) -> AsyncIterator[Event | int]:
        """One watch stream on one session: events, and ints for progress (revision reached)."""
        call = session.watch.Watch(metadata=session.metadata + _REQUIRE_LEADER)
        try:
            create = rpc.WatchCreateRequest(
                key=start, range_end=end, start_revision=last + 1, prev_kv=True, progress_notify=True
            )
            await self._conn.guard(session, call.write(rpc.WatchRequest(create_request=create)))
            while True:
                resp = await self._conn.guard(session, call.read())
                if resp is grpc.aio.EOF:
                    raise SessionLost(session, "watch stream ended", sent=True)
                if resp.compact_revision:
                    raise CompactedError(last, resp.compact_revision)
                if resp.canceled:
                    reason = resp.cancel_reason or "canceled by etcd"
                    if "leader" in reason:  # the member lost its leader: try another member
                        self._conn.fail(session)
                        raise SessionLost(session, reason, sent=True)
                    raise StoreError(f"etcd watch canceled: {reason}")
                if resp.events:
                    for ev in resp.events:
                        yield _event(ev)
                elif not resp.created:
                    # A progress notification: every event up to this revision has been delivered.
                    yield resp.header.revision
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.UNAUTHENTICATED and self.options.username is not None:
                # The auth token expired while the watch was idle: a new session authenticates again.
                self._conn.fail(session)
                raise SessionLost(session, exc.details() or "token expired", sent=True) from exc
            raise _store_error(exc, "watch") from exc
        finally:
            call.cancel()

    # -- leases ----------------------------------------------------------------------------------------

    async def lease_grant(self, ttl: float) -> int:
        # etcd counts TTLs in whole seconds (and may raise a tiny TTL to its minimum).
        request = rpc.LeaseGrantRequest(TTL=max(1, math.ceil(ttl)))
        resp = await self._unary("lease grant", "lease.LeaseGrant", request)
        if resp.error:
            raise StoreError(f"etcd lease grant failed: {resp.error}")
        return resp.ID

    async def lease_keepalive(self, lease: int) -> None:
        async def once(session: Session) -> int:
            call = session.lease.LeaseKeepAlive(metadata=session.metadata, timeout=self.options.timeout)
            try:
                await call.write(rpc.LeaseKeepAliveRequest(ID=lease))
                resp = await call.read()
            finally:
                call.cancel()
            return 0 if resp is grpc.aio.EOF else resp.TTL

        try:
            ttl = await self._conn.call("lease keepalive", once, idempotent=True)
        except grpc.aio.AioRpcError as exc:
            raise _store_error(exc, "lease keepalive") from exc
        if ttl <= 0:
            raise LeaseNotFoundError(f"lease {lease} not found (expired or revoked)")

    async def lease_revoke(self, lease: int) -> None:
        try:
            await self._unary("lease revoke", "lease.LeaseRevoke", rpc.LeaseRevokeRequest(ID=lease))
        except LeaseNotFoundError:
            pass

    # -- compaction ------------------------------------------------------------------------------------

    def _maybe_compact(self, revision: int) -> None:
        """Compact to ``revision - history`` every ``history / 2`` revisions, in the background."""
        history = self.options.history
        if not history or (self._compactor is not None and not self._compactor.done()):
            return
        target = revision - history
        if target - self._compacted < max(1, history // 2):
            return
        self._compactor = asyncio.get_running_loop().create_task(self._compact(target))

    async def _compact(self, target: int) -> None:
        try:
            await self._unary("compaction", "kv.Compact", rpc.CompactionRequest(revision=target))
        except StoreError as exc:
            # Another netmaster compacted further already, or etcd is briefly away: try again later.
            if "compacted" not in str(exc):
                log.debug("etcd compaction to %d failed: %s", target, exc)
                return
        self._compacted = max(self._compacted, target)

    async def close(self) -> None:
        if self._compactor is not None:
            self._compactor.cancel()
            await asyncio.gather(self._compactor, return_exceptions=True)
        await self._conn.close()


def _compare(cmp: Compare) -> rpc.Compare:
    if cmp.prefix:
        start, end = _prefix_range(cmp.key)
        return rpc.Compare(key=start, range_end=end, target=rpc.Compare.MOD, result=rpc.Compare.LESS,
                           mod_revision=cmp.mod_revision + 1)  # fmt: skip
    if cmp.mod_revision == 0:
        # "Absent" in etcd's terms: the key was never created (in its current life).
        return rpc.Compare(key=_b(cmp.key), target=rpc.Compare.CREATE, result=rpc.Compare.EQUAL, create_revision=0)
    return rpc.Compare(key=_b(cmp.key), target=rpc.Compare.MOD, result=rpc.Compare.EQUAL, mod_revision=cmp.mod_revision)


def _failure_range(cmp: Compare) -> rpc.RangeRequest:
    """What a failed transaction reads to tell which compare failed: the key, or the first key under
    the prefix modified after the revision."""
    if cmp.prefix:
        start, end = _prefix_range(cmp.key)
        since = cmp.mod_revision + 1
        return rpc.RangeRequest(key=start, range_end=end, keys_only=True, limit=1, min_mod_revision=since)
    return rpc.RangeRequest(key=_b(cmp.key), keys_only=True)


def _request_op(op: Op) -> rpc.RequestOp:
    if isinstance(op, Put):
        return rpc.RequestOp(request_put=rpc.PutRequest(key=_b(op.key), value=_b(op.value), lease=op.lease))
    if isinstance(op, Delete):
        return rpc.RequestOp(request_delete_range=rpc.DeleteRangeRequest(key=_b(op.key)))
    raise TypeError(f"not a store operation: {op!r}")
