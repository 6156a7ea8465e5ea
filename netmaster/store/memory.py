"""``memory://``: the whole store in a dict, for unit tests and throw-away runs."""

from __future__ import annotations

import bisect
from collections import deque

from netmaster.store.base import Event, KeyValue, Op, Put, prefix_end
from netmaster.store.local import LocalStore, make_event, next_kv


class MemoryStore(LocalStore):
    def __init__(self, *, history: int = 10_000) -> None:
        super().__init__(history=history)
        self._data: dict[str, KeyValue] = {}
        self._keys: list[str] = []  # sorted, for prefix ranges
        self._revision = 1
        self._events: deque[Event] = deque(maxlen=history)

    def _get(self, key: str) -> KeyValue | None:
        return self._data.get(key)

    def _range(self, prefix: str) -> list[KeyValue]:
        lo = bisect.bisect_left(self._keys, prefix)
        hi = bisect.bisect_left(self._keys, prefix_end(prefix))
        return [self._data[k] for k in self._keys[lo:hi]]

    def _current_revision(self) -> int:
        return self._revision

    def _commit(self, revision: int, writes: list[tuple[Op, KeyValue | None]]) -> list[Event]:
        events = []
        for op, previous in writes:
            if isinstance(op, Put):
                if previous is None:
                    bisect.insort(self._keys, op.key)
                self._data[op.key] = next_kv(op, previous, revision)
            else:
                del self._data[op.key]
                del self._keys[bisect.bisect_left(self._keys, op.key)]
            events.append(make_event(op, previous, revision))
        self._revision = revision
        self._events.extend(events)
        return events

    def _events_after(self, prefix: str, revision: int) -> list[Event]:
        if not self._events or self._events[-1].revision <= revision:
            return []
        return [e for e in self._events if e.revision > revision and e.key.startswith(prefix)]

    def _oldest_revision(self) -> int:
        if len(self._events) < (self._events.maxlen or 0):
            return 0
        return self._events[0].revision

    def _keys_with_lease(self, lease: int) -> list[str]:
        return [k for k, kv in self._data.items() if kv.lease == lease]
