"""Keeping a store lease alive, shared by leader election and the member registry.

The rule that makes leader election safe lives here: a lease is renewed every ``ttl / 3``, and if no
renewal has succeeded for ``2/3 ttl`` (counted from when the last good renewal was *sent*) the holder
must assume it is gone. The store cannot expire the lease earlier than ``ttl`` after that send, so a
holder that steps down at that point never overlaps with the next leader.
"""

from __future__ import annotations

import asyncio
import logging
from typing import NoReturn

from netmaster.store.base import LeaseNotFoundError, Store, StoreError

log = logging.getLogger(__name__)


class LeaseLost(Exception):
    """The lease expired, was revoked, or could not be renewed in time."""


async def keep_alive(store: Store, lease: int, ttl: float) -> NoReturn:
    """Renew ``lease`` until it is lost; then raise :class:`LeaseLost`. Cancel to stop."""
    loop = asyncio.get_running_loop()
    interval = ttl / 3
    last_good_send = loop.time()
    while True:
        await asyncio.sleep(interval)
        sent = loop.time()
        try:
            async with asyncio.timeout(interval):
                await store.lease_keepalive(lease)
            last_good_send = sent
        except LeaseNotFoundError as exc:
            raise LeaseLost(f"lease {lease:x} expired: {exc}") from exc
        except (StoreError, TimeoutError) as exc:
            overdue = loop.time() - last_good_send
            if overdue >= 2 * ttl / 3:
                raise LeaseLost(f"lease {lease:x} not renewed for {overdue:.1f}s: {exc}") from exc
            log.warning("lease %x renewal failed (%s), retrying", lease, exc)
            # Retry sooner than the regular interval: there is at most ttl/3 of margin left.
            interval = ttl / 9
            continue
        interval = ttl / 3


async def revoke_quietly(store: Store, lease: int, within: float) -> None:
    """Best-effort revoke (on shutdown or after losing the lease): others need not wait for expiry."""
    try:
        async with asyncio.timeout(within):
            await store.lease_revoke(lease)
    except (StoreError, TimeoutError) as exc:
        log.info("could not revoke lease %x (%s); it expires by itself", lease, exc)
