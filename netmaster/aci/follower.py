"""The ACI reconciler's view of the objects: netmaster's shared object index, followed by callbacks.

The reconciler runs inside netmaster, so it follows the same in-memory copy that serves the API
(:class:`~netmaster.objects.index.ObjectIndex`, fed by the store cache's single watch) rather than a
second list+watch of its own. ``on_change`` is called for every changed object, and with
``(None, None)`` when following starts and after the cache re-listed, so nothing a consumer derives
from the copy can stay stale.
"""

from __future__ import annotations

import asyncio
from typing import Any

from netmaster.objects.index import ObjectIndex, OnChange


class ObjectFollower:
    def __init__(self, index: ObjectIndex, on_change: OnChange) -> None:
        self.index = index
        self.on_change = on_change
        self.ready = asyncio.Event()

    @property
    def objects(self) -> dict[str, Any]:
        """kind -> key -> stored value ({"config", "status"}); read-only."""
        return self.index.objects

    async def run(self) -> None:
        """Follow the index until cancelled."""
        await self.index.cache.start()
        self.index.subscribe(self.on_change)
        try:
            self.ready.set()
            self.on_change(None, None)
            await asyncio.Event().wait()
        finally:
            self.index.unsubscribe(self.on_change)

    def infra_type(self) -> str:
        return self.index.infra_type()
