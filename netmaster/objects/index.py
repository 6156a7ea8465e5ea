"""The objects in memory, as the store cache delivers them: parsed records and their relations.

One per netmaster, fed by the :class:`~netmaster.store.cache.CachedStore`'s listener (so it is always
at the cache's revision): GET is a dict lookup, a list walks only the kind asked for, in key order,
and links and link-sets come from the incrementally maintained :class:`RelationIndex`. The ACI
reconciler follows the same index (:mod:`netmaster.aci.follower`) instead of a second copy.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from typing import Any

from sortedcontainers import SortedDict

from netmaster.objects.base import Record
from netmaster.objects.relations import RelationIndex
from netmaster.store import keys
from netmaster.store.base import Event, EventType
from netmaster.store.cache import CachedStore

#: (kind, key) of a changed object; (None, None) after a re-list: everything may have changed.
OnChange = Callable[[str | None, str | None], None]


class ObjectIndex:
    def __init__(self, cache: CachedStore) -> None:
        self.cache = cache
        #: kind -> key -> the stored value ({"config": ..., "status": ...}), keys in order. Read-only.
        self.objects: dict[str, SortedDict] = {}
        self.relations = RelationIndex()
        # GET and list answers, encoded once per change of the object or of its relations.
        self._encoded: dict[tuple[str, str], bytes] = {}
        self._watchers: list[OnChange] = []
        self._load()
        cache.add_listener(self._on_event)

    def subscribe(self, on_change: OnChange) -> None:
        self._watchers.append(on_change)

    def unsubscribe(self, on_change: OnChange) -> None:
        with contextlib.suppress(ValueError):
            self._watchers.remove(on_change)

    def record(self, kind: str, key: str) -> Record | None:
        value = self.objects.get(kind, {}).get(key)
        return Record(kind, key, value["config"], value["status"]) if value is not None else None

    def records(self, kind: str) -> list[Record]:
        return [Record(kind, k, v["config"], v["status"]) for k, v in self.objects.get(kind, {}).items()]

    def decorate(self, record: Record) -> dict[str, Any]:
        return self.relations.decorate(record)

    def encoded(self, kind: str, key: str) -> bytes | None:
        """The object as GET answers it, as JSON (what JSONResponse would send), or None."""
        node = (kind, key)
        body = self._encoded.get(node)
        if body is None:
            record = self.record(kind, key)
            if record is None:
                return None
            body = self._encoded[node] = encode_json(self.decorate(record))
        return body

    def encoded_list(self, kind: str) -> bytes:
        """Every object of ``kind`` as list answers it, in key order: O(objects of the kind)."""
        return b"[" + b",".join(self.encoded(kind, key) or b"null" for key in self.objects.get(kind, ())) + b"]"

    def _load(self) -> None:
        self.objects = {}
        self.relations.clear()
        self._encoded.clear()
        for kv in self.cache.range(keys.OBJ):
            kind, _, key = kv.key[len(keys.OBJ) :].partition("/")
            self._put(kind, key, json.loads(kv.value))

    def _put(self, kind: str, key: str, value: dict[str, Any]) -> None:
        items = self.objects.get(kind)
        if items is None:
            items = self.objects[kind] = SortedDict()
        items[key] = value
        self._forget(self.relations.put(Record(kind, key, value["config"], value["status"])))

    def _forget(self, nodes: set[tuple[str, str]]) -> None:
        for node in nodes:
            self._encoded.pop(node, None)

    def _on_event(self, event: Event | None) -> None:
        if event is None:
            self._load()
            self._tell(None, None)
            return
        if not event.key.startswith(keys.OBJ):
            return
        kind, _, key = event.key[len(keys.OBJ) :].partition("/")
        if event.type is EventType.PUT and event.value is not None:
            self._put(kind, key, json.loads(event.value))
        else:
            self.objects.get(kind, {}).pop(key, None)
            self._forget(self.relations.remove(kind, key))
        self._tell(kind, key)

    def _tell(self, kind: str | None, key: str | None) -> None:
        for watcher in list(self._watchers):
            watcher(kind, key)

    def infra_type(self) -> str:
        settings = self.objects.get("global", {}).get("global")
        return (settings or {}).get("config", {}).get("networkInfraType") or "default"


def encode_json(body: Any) -> bytes:
    """JSON exactly as the API's JSONResponse renders it."""
    return json.dumps(body, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()
