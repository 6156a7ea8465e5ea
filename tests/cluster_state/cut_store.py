"""A store proxy that can be cut off, to play a netmaster partitioned from its store.

Cutting is what happens to a leader whose network fails: it cannot renew its lease or see changes,
but nothing tells the store it is gone, so its lease simply runs out. Every call fails with
:class:`StoreUnavailableError` while cut, and open watches end with it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from netmaster.store.base import Compare, Event, KeyValue, Op, Store, StoreUnavailableError, TxnResult


class CutStore(Store):
    def __init__(self, inner: Store) -> None:
        self.inner = inner
        self._cut = asyncio.Event()

    def cut(self) -> None:
        self._cut.set()

    def heal(self) -> None:
        self._cut = asyncio.Event()

    def _check(self) -> None:
        if self._cut.is_set():
            raise StoreUnavailableError("cut off from the store (test)")

    async def get(self, key: str) -> KeyValue | None:
        self._check()
        return await self.inner.get(key)

    async def list(self, prefix: str) -> tuple[list[KeyValue], int]:
        self._check()
        return await self.inner.list(prefix)

    async def txn(self, compares: list[Compare], ops: list[Op]) -> TxnResult:
        self._check()
        return await self.inner.txn(compares, ops)

    async def revision(self) -> int:
        self._check()
        return await self.inner.revision()

    async def lease_grant(self, ttl: float) -> int:
        self._check()
        return await self.inner.lease_grant(ttl)

    async def lease_keepalive(self, lease: int) -> None:
        self._check()
        await self.inner.lease_keepalive(lease)

    async def lease_revoke(self, lease: int) -> None:
        self._check()
        await self.inner.lease_revoke(lease)

    async def watch(self, prefix: str, since: int) -> AsyncIterator[Event]:  # type: ignore[override]
        self._check()
        cut = self._cut
        events = aiter(self.inner.watch(prefix, since))
        cut_wait = asyncio.ensure_future(cut.wait())
        step: asyncio.Future[Event] | None = None
        try:
            while True:
                step = asyncio.ensure_future(anext(events))
                await asyncio.wait({step, cut_wait}, return_when=asyncio.FIRST_COMPLETED)
                if cut.is_set():
                    raise StoreUnavailableError("cut off from the store (test)")
                try:
                    event = step.result()
                except StopAsyncIteration:
                    return
                step = None
                yield event
        finally:
            cut_wait.cancel()
            if step is not None and not step.done():
                step.cancel()
                await asyncio.gather(step, return_exceptions=True)
            await events.aclose()  # type: ignore[attr-defined]
