"""Leader election over any store: one netmaster runs the background reconcilers, the others stand by.

Every netmaster serves the API, but the background work (ACI push, endpoint garbage collection) must
run exactly once in the cluster. The elector campaigns for one key (``/contiv/leader``) holding its
identity, attached to a lease it keeps alive (TTL 4 s by default, renewed every TTL/3):

* the key is created only if absent (a ``create_revision == 0`` transaction), so there is one winner;
* the others watch the key and campaign again the moment it is deleted: at once when the leader
  resigns (its lease is revoked), at lease expiry when it dies or is cut off from the store;
* a leader that cannot renew its lease steps down after 2/3 of the TTL, before the store could expire
  it, so two leaders never act at once (see :mod:`netmaster.ha.lease`). It also steps down if the key is
  deleted or taken over behind its back. After stepping down it campaigns again.

Only the store primitives are used, so memory, SQLite and etcd all work; across machines only etcd
makes sense, because the embedded backends keep leases in one process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from contiv_api.backoff import Backoff
from netmaster.ha.lease import LeaseLost, keep_alive, revoke_quietly
from netmaster.ha.membership import MemberInfo
from netmaster.store.base import CompactedError, EventType, Store, StoreError

log = logging.getLogger(__name__)

LEADER_KEY = "/contiv/leader"
DEFAULT_TTL = 4.0

LeaderTask = Callable[[], Awaitable[Any]]


async def read_leader(store: Store, key: str = LEADER_KEY) -> MemberInfo | None:
    """The current leader's identity, or None while there is none (e.g. during a failover)."""
    kv = await store.get(key)
    if kv is None:
        return None
    try:
        return MemberInfo.from_json(kv.value)
    except (ValueError, TypeError):
        log.warning("leader key %s holds a malformed value", key)
        return None


class LeaderElector:
    """Campaign for leadership for as long as it runs; run ``on_elected`` while leader.

    ``on_elected`` is started as a task when this instance becomes leader and cancelled when it stops
    being leader; ``on_deposed`` is called after that. ``leading`` is set while leader, for code that
    would rather wait on an event. Use ``async with elector:`` or ``start()``/``stop()``.
    """

    def __init__(
        self,
        store: Store,
        identity: MemberInfo,
        *,
        key: str = LEADER_KEY,
        ttl: float = DEFAULT_TTL,
        on_elected: LeaderTask | None = None,
        on_deposed: Callable[[], Any] | None = None,
    ) -> None:
        self.store = store
        self.identity = identity
        self.key = key
        self.ttl = ttl
        self.on_elected = on_elected
        self.on_deposed = on_deposed
        self.leading = asyncio.Event()
        self.terms = 0  # how many times this instance became leader (for /info and tests)
        self._value = identity.to_json()
        self._task: asyncio.Task[None] | None = None
        self._leader_task: asyncio.Task[Any] | None = None

    @property
    def is_leader(self) -> bool:
        return self.leading.is_set()

    async def current_leader(self) -> MemberInfo | None:
        return await read_leader(self.store, self.key)

    # -- lifecycle -------------------------------------------------------------------------------------

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self.run(), name=f"leader-elector:{self.key}")

    async def stop(self) -> None:
        """Resign: stop leader work and revoke the lease so another instance takes over at once."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def __aenter__(self) -> LeaderElector:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def wait_leader(self) -> None:
        await self.leading.wait()

    # -- campaign --------------------------------------------------------------------------------------

    async def run(self) -> None:
        """Campaign, lead, step down, campaign again: forever, until cancelled."""
        backoff = Backoff(0.05, self.ttl / 3)
        while True:
            try:
                await self._term()
                backoff.reset()
            except (LeaseLost, StoreError) as exc:
                log.warning("leader election on %s: %s", self.key, exc)
                await asyncio.sleep(backoff.next())
            except Exception:
                # A bug must not end the campaign for good: this instance would never lead again.
                log.exception("leader election on %s failed unexpectedly", self.key)
                await asyncio.sleep(backoff.next())

    async def _term(self) -> None:
        """One lease: wait for the key, hold it while the lease lives, give everything up at the end."""
        lease = await self.store.lease_grant(self.ttl)
        keeper = asyncio.get_running_loop().create_task(keep_alive(self.store, lease, self.ttl))
        try:
            await _first(self._acquire(lease), keeper)
            self._elected()
            await _first(self._guard_key(), keeper)
        finally:
            keeper.cancel()
            await asyncio.gather(keeper, return_exceptions=True)
            await self._deposed()
            # Revoking deletes the key now, so followers need not wait for the lease to expire.
            await revoke_quietly(self.store, lease, self.ttl / 3)

    async def _acquire(self, lease: int) -> None:
        while True:
            if await self.store.create(self.key, self._value, lease=lease):
                return
            kv = await self.store.get(self.key)
            if kv is None:
                continue  # the leader went away between our create and get
            if kv.lease == lease:
                return  # our own create, applied although its answer was lost
            await self._until_deleted(kv.mod_revision)

    async def _until_deleted(self, since: int) -> None:
        try:
            async for event in self.store.watch(self.key, since):
                if event.key == self.key and event.type == EventType.DELETE:
                    return
        except CompactedError:
            return  # look again

    async def _guard_key(self) -> None:
        """Return LeaseLost when the key is no longer ours (deleted by hand, or taken over)."""
        kv = await self.store.get(self.key)
        if kv is None or kv.value != self._value:
            raise LeaseLost(f"leader key {self.key} is no longer ours")
        since = kv.mod_revision
        while True:
            try:
                async for event in self.store.watch(self.key, since):
                    since = event.revision
                    lost = event.type == EventType.DELETE or event.value != self._value
                    if event.key == self.key and lost:
                        raise LeaseLost(f"leader key {self.key} was deleted or taken over")
            except CompactedError:
                kv = await self.store.get(self.key)
                if kv is None or kv.value != self._value:
                    raise LeaseLost(f"leader key {self.key} is no longer ours") from None
                since = kv.mod_revision
            except StoreError as exc:
                # The lease keeper decides whether the store is gone for too long; keep watching.
                log.info("leader key watch interrupted (%s); resuming", exc)
                await asyncio.sleep(self.ttl / 10)

    def _elected(self) -> None:
        self.terms += 1
        self.leading.set()
        log.info("%s is now leader (%s)", self.identity.id, self.key)
        if self.on_elected is not None:
            self._leader_task = asyncio.get_running_loop().create_task(self._run_leader_work())

    async def _run_leader_work(self) -> None:
        assert self.on_elected is not None
        try:
            await self.on_elected()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("leader work of %s failed; still leader", self.identity.id)

    async def _deposed(self) -> None:
        if not self.leading.is_set():
            return
        self.leading.clear()
        log.info("%s is no longer leader (%s)", self.identity.id, self.key)
        if self._leader_task is not None:
            self._leader_task.cancel()
            await asyncio.gather(self._leader_task, return_exceptions=True)
            self._leader_task = None
        if self.on_deposed is not None:
            result = self.on_deposed()
            if asyncio.iscoroutine(result):
                await result


async def _first(main: Awaitable[Any], watchdog: asyncio.Task[Any]) -> None:
    """Await ``main`` unless ``watchdog`` finishes (raises) first; cancel ``main`` in that case."""
    task = asyncio.ensure_future(main)
    try:
        await asyncio.wait({task, watchdog}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    if task.done() and not task.cancelled():
        task.result()  # re-raise main's failure, or return its success
        return
    watchdog.result()  # raises LeaseLost (or a store error)
