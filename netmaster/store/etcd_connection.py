"""One gRPC session to an etcd cluster with endpoint failover, TLS and token authentication.

Why not ``aetcd.Client``: it opens only insecure channels to a single ``host:port`` and leaves every
connection error to the caller, so it offers neither TLS nor failover. It does ship etcd's generated
v3 stubs (``aetcd.rpc``), which this module drives directly:

* a *session* is one channel to one endpoint (plus its auth token). A request that finds the
  endpoint unreachable marks the session failed; the next session opens a fresh channel to the next
  endpoint. Channels use a private subchannel pool and short reconnect backoff, otherwise gRPC would
  share a backed-off connection between channels and a restarted member stays unused for seconds;
* a request is retried on the next endpoint only when that cannot apply it twice: reads and lease
  calls always, a write only when the failure proves the request never left (the connection could not
  be established). Otherwise the caller gets :class:`StoreUnavailableError` saying the outcome is
  unknown, so netmaster answers 503 and the client retries an idempotent API call;
* every request has a deadline, and a whole round over all endpoints is bounded, so an etcd outage
  turns into a prompt :class:`StoreUnavailableError` naming the endpoints, never a hang.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import grpc
from aetcd import rpc

from netmaster.store.base import StoreError, StoreUnavailableError
from netmaster.store.etcd_options import EtcdOptions

log = logging.getLogger(__name__)

T = TypeVar("T")

_CHANNEL_OPTIONS = [
    ("grpc.use_local_subchannel_pool", 1),
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
    ("grpc.max_receive_message_length", 256 * 1024 * 1024),
    # Detect a silently dead peer (no RST, e.g. a partition) while requests are active. etcd rejects
    # pings more often than every 5 s (--grpc-keepalive-min-time), so stay above that.
    ("grpc.keepalive_time_ms", 10_000),
    ("grpc.keepalive_timeout_ms", 5_000),
    ("grpc.keepalive_permit_without_calls", 0),
]

_RETRYABLE = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
# etcd errors that mean "this member cannot serve now" but may arrive with another status code
# (e.g. UNKNOWN "context deadline exceeded" when our deadline expires inside etcd).
_UNAVAILABLE_DETAILS = ("context deadline exceeded", "request timed out", "no leader", "leader changed")


def _connection_trouble(exc: grpc.aio.AioRpcError) -> bool:
    details = (exc.details() or "").lower()
    return exc.code() in _RETRYABLE or any(d in details for d in _UNAVAILABLE_DETAILS)


@dataclass(eq=False)
class Session:
    """A channel to one endpoint and the stubs and metadata to use on it."""

    endpoint: str
    channel: grpc.aio.Channel
    metadata: tuple[tuple[str, str], ...]
    kv: rpc.KVStub
    lease: rpc.LeaseStub
    watch: rpc.WatchStub
    maintenance: rpc.MaintenanceStub
    failed: bool = False


class SessionLost(Exception):
    """The session's connection broke; whether the request was applied is unknown."""

    def __init__(self, session: Session, detail: str, *, sent: bool) -> None:
        super().__init__(detail)
        self.session = session
        self.detail = detail
        self.sent = sent


class EtcdConnection:
    def __init__(self, options: EtcdOptions) -> None:
        self.options = options
        self._index = 0
        self._session: Session | None = None
        self._lock = asyncio.Lock()
        self._closed = False
        self._closing: set[asyncio.Task[None]] = set()
        self._credentials = _channel_credentials(options) if options.tls else None

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def endpoint(self) -> str | None:
        """The endpoint currently in use (for /info and logs)."""
        return self._session.endpoint if self._session else None

    # -- sessions --------------------------------------------------------------------------------------

    async def session(self) -> Session:
        """The live session, opening one (on the next reachable endpoint) if needed."""
        current = self._session
        if current is not None and not current.failed:
            return current
        async with self._lock:
            if self._closed:
                raise StoreError(f"store {self.options.describe()} is closed")
            if self._session is not None and not self._session.failed:
                return self._session
            self._session = await self._open_any()
            return self._session

    async def _open_any(self) -> Session:
        endpoints = self.options.endpoints
        problems = []
        loop = asyncio.get_running_loop()
        # A member that accepts connections but has no quorum holds the probe for up to one timeout;
        # two timeouts in all leave the next members their chance.
        deadline = loop.time() + 2 * self.options.timeout
        for _ in range(len(endpoints)):
            endpoint = endpoints[self._index]
            remaining = deadline - loop.time()
            if remaining <= 0:
                problems.append(f"{endpoint}: not tried (deadline)")
                break
            try:
                session = await self._open(endpoint, remaining)
                log.info("etcd: connected to %s", endpoint)
                return session
            except _Unreachable as exc:
                problems.append(f"{endpoint}: {exc}")
                self._index = (self._index + 1) % len(endpoints)
        raise StoreUnavailableError(
            f"etcd unavailable: cannot reach any of {', '.join(endpoints)} ({'; '.join(problems)})"
        )

    async def _open(self, endpoint: str, within: float) -> Session:
        """Connect (``connect_timeout``), authenticate and probe (``timeout``), all within ``within``."""
        if self._credentials is not None:
            channel = grpc.aio.secure_channel(endpoint, self._credentials, options=_CHANNEL_OPTIONS)
        else:
            channel = grpc.aio.insecure_channel(endpoint, options=_CHANNEL_OPTIONS)
        try:
            started = asyncio.get_running_loop().time()
            state = await _wait_ready(channel, min(self.options.connect_timeout, within))
            if state != grpc.ChannelConnectivity.READY:
                raise _Unreachable(await _failure_detail(channel, state))
            metadata = await self._authenticate(channel, endpoint)
            left = within - (asyncio.get_running_loop().time() - started)
            await self._probe(channel, metadata, max(0.1, min(self.options.timeout, left)))
        except BaseException:
            self._dispose(channel)
            raise
        return Session(
            endpoint=endpoint,
            channel=channel,
            metadata=metadata,
            kv=rpc.KVStub(channel),
            lease=rpc.LeaseStub(channel),
            watch=rpc.WatchStub(channel),
            maintenance=rpc.MaintenanceStub(channel),
        )

    async def _authenticate(self, channel: grpc.aio.Channel, endpoint: str) -> tuple[tuple[str, str], ...]:
        opts = self.options
        if opts.username is None:
            return ()
        request = rpc.AuthenticateRequest(name=opts.username, password=opts.password or "")
        try:
            resp = await rpc.AuthStub(channel).Authenticate(request, timeout=opts.timeout)
        except grpc.aio.AioRpcError as exc:
            if _connection_trouble(exc):
                raise _Unreachable(f"authentication request failed: {exc.details()}") from exc
            # Wrong credentials are a configuration error: failing over would not help.
            raise StoreError(f"etcd authentication as {opts.username!r} failed at {endpoint}: {exc.details()}") from exc
        return (("token", resp.token),)

    async def _probe(self, channel: grpc.aio.Channel, metadata: tuple[tuple[str, str], ...], within: float) -> None:
        """A linearizable read: it answers only once the member is part of a quorum with a leader.

        Without it a write could go to a member that is still electing a new leader (right after the
        old leader died), sit there until its deadline and end with an unknown outcome. A read is
        safe to retry; the write then goes out to a member that can commit it.
        """
        try:
            await rpc.KVStub(channel).Range(
                rpc.RangeRequest(key=b"\0", count_only=True), timeout=within, metadata=metadata
            )
        except grpc.aio.AioRpcError as exc:
            if _connection_trouble(exc):
                raise _Unreachable(f"member has no quorum: {exc.details()}") from exc
            raise

    def fail(self, session: Session) -> None:
        """Stop using ``session``; the next request opens one on the next endpoint."""
        if session.failed:
            return
        session.failed = True
        if self._session is session:
            self._index = (self.options.endpoints.index(session.endpoint) + 1) % len(self.options.endpoints)
            log.warning("etcd: lost %s, failing over", session.endpoint)
        # A grace period lets requests still running on the old channel finish.
        self._dispose(session.channel, grace=self.options.timeout)

    def _dispose(self, channel: grpc.aio.Channel, grace: float | None = None) -> None:
        task = asyncio.get_running_loop().create_task(channel.close(grace))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def close(self) -> None:
        self._closed = True
        if self._session is not None:
            session, self._session = self._session, None
            session.failed = True
            await session.channel.close(None)
        for task in list(self._closing):
            task.cancel()
        await asyncio.gather(*self._closing, return_exceptions=True)

    # -- requests --------------------------------------------------------------------------------------

    async def call(self, what: str, request: Callable[[Session], Awaitable[T]], *, idempotent: bool) -> T:
        """Run ``request`` on a live session, failing over as its idempotence allows."""
        attempts = len(self.options.endpoints) + 1
        loop = asyncio.get_running_loop()
        # Each attempt has its own deadline; the whole call stops retrying after two of them, so
        # members that accept connections but cannot answer (no quorum) still fail promptly.
        budget_end = loop.time() + 2 * self.options.timeout
        reauthenticated = False
        while True:
            session = await self.session()
            try:
                return await self.guard(session, request(session))
            except SessionLost as lost:
                attempts -= 1
                if attempts > 0 and loop.time() < budget_end and (idempotent or not lost.sent):
                    continue
                unknown = "" if idempotent or not lost.sent else "; the write may or may not be applied"
                raise StoreUnavailableError(
                    f"etcd unavailable: {what} failed at {lost.session.endpoint} "
                    f"(endpoints {', '.join(self.options.endpoints)}): {lost.detail}{unknown}"
                ) from lost
            except grpc.aio.AioRpcError as exc:
                if (
                    exc.code() == grpc.StatusCode.UNAUTHENTICATED
                    and self.options.username is not None
                    and not reauthenticated
                ):
                    # The token expired (etcd --auth-token-ttl): authenticate again, once.
                    reauthenticated = True
                    self.fail(session)
                    continue
                raise

    async def guard(self, session: Session, pending: Awaitable[T]) -> T:
        """Await a gRPC call on ``session``, turning connection loss into :class:`SessionLost`."""
        try:
            return await pending
        except grpc.aio.AioRpcError as exc:
            if not _connection_trouble(exc):
                raise
            self.fail(session)
            raise SessionLost(session, exc.details() or exc.code().name, sent=_maybe_sent(exc)) from exc
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise
            # Not our cancellation: the channel was closed under the call (failover or close()).
            self.fail(session)
            raise SessionLost(session, "connection closed", sent=True) from None


class _Unreachable(Exception):
    """An endpoint could not be connected to (nothing was sent to it)."""


def _maybe_sent(exc: grpc.aio.AioRpcError) -> bool:
    """False only when gRPC proves the request never reached a server."""
    details = (exc.details() or "").lower()
    return not (exc.code() == grpc.StatusCode.UNAVAILABLE and "failed to connect" in details)


async def _wait_ready(channel: grpc.aio.Channel, within: float) -> grpc.ChannelConnectivity:
    """Connect ``channel``; return READY, or the failing state as soon as gRPC reports one."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    state = channel.get_state(try_to_connect=True)
    while state not in (
        grpc.ChannelConnectivity.READY,
        grpc.ChannelConnectivity.TRANSIENT_FAILURE,
        grpc.ChannelConnectivity.SHUTDOWN,
    ):
        remaining = deadline - loop.time()
        if remaining <= 0:
            return state
        try:
            await asyncio.wait_for(channel.wait_for_state_change(state), remaining)
        except TimeoutError:
            return channel.get_state()
        state = channel.get_state(try_to_connect=True)
    return state


async def _failure_detail(channel: grpc.aio.Channel, state: grpc.ChannelConnectivity) -> str:
    """Why ``channel`` is not READY, in gRPC's words ("Connection refused", "Ssl handshake failed")."""
    try:
        await rpc.KVStub(channel).Range(rpc.RangeRequest(key=b"\0", count_only=True), timeout=0.5)
    except grpc.aio.AioRpcError as exc:
        return exc.details() or exc.code().name
    return f"connection {state.name.lower()}"


def _channel_credentials(options: EtcdOptions) -> grpc.ChannelCredentials:
    def read(path: str | None, what: str) -> bytes | None:
        if path is None:
            return None
        try:
            return Path(path).read_bytes()
        except OSError as exc:
            raise StoreError(f"cannot read etcd TLS {what} {path}: {exc}") from exc

    return grpc.ssl_channel_credentials(
        root_certificates=read(options.ca_file, "CA"),
        private_key=read(options.key_file, "key"),
        certificate_chain=read(options.cert_file, "certificate"),
    )
