"""An in-memory copy of netmaster's objects that follows the store: list at a revision, then watch.

The ACI reconciler runs inside netmaster, so it follows the store directly (the same list+watch the
agents do over HTTP, without the HTTP): one list of ``/contiv/obj/`` gives the objects and the
revision, the watch from that revision gives every later change in order. A compacted revision or a
store failure is answered by a fresh list, after which every object counts as changed, so nothing a
consumer derives from the copy can stay stale.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Any

from netmaster.store import keys
from netmaster.store.base import CompactedError, EventType, Store, StoreError

log = logging.getLogger("netmaster.aci")

#: (kind, key) of a changed object; (None, None) after a re-list: everything may have changed.
OnChange = Callable[[str | None, str | None], None]

RELIST_DELAY = 1.0


class ObjectFollower:
    def __init__(self, store: Store, on_change: OnChange) -> None:
        self.store = store
        self.on_change = on_change
        self.objects: dict[str, dict[str, dict[str, Any]]] = {}
        self.revision = 0
        self.ready = asyncio.Event()

    async def run(self) -> None:
        """List, then watch; on any failure list again. Runs until cancelled."""
        while True:
            try:
                await self._list()
                async for event in self.store.watch(keys.OBJ, self.revision):
                    kind, _, key = event.key[len(keys.OBJ) :].partition("/")
                    if event.type is EventType.PUT and event.value is not None:
                        self.objects.setdefault(kind, {})[key] = json.loads(event.value)
                    else:
                        self.objects.get(kind, {}).pop(key, None)
                    self.revision = event.revision
                    self.on_change(kind, key)
            except CompactedError as exc:
                log.info("ACI follower: %s; listing again", exc)
            except StoreError as exc:
                log.warning("ACI follower: state store failed (%s); listing again in %.0fs", exc, RELIST_DELAY)
                await asyncio.sleep(RELIST_DELAY)

    async def _list(self) -> None:
        kvs, revision = await self.store.list(keys.OBJ)
        objects: dict[str, dict[str, dict[str, Any]]] = {}
        for kv in kvs:
            kind, _, key = kv.key[len(keys.OBJ) :].partition("/")
            objects.setdefault(kind, {})[key] = json.loads(kv.value)
        self.objects, self.revision = objects, revision
        self.ready.set()
        self.on_change(None, None)

    def infra_type(self) -> str:
        settings = self.objects.get("global", {}).get("global")
        return (settings or {}).get("config", {}).get("networkInfraType") or "default"
