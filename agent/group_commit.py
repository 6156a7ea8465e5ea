"""Group commit: concurrent callers' items committed together, each caller waiting for its own.

A burst of CNI ADDs (20 at once) each needs one OVSDB port added; one OVSDB transaction per port
means 20 round trips one after the other. Here every caller hands in its item and then competes for
the commit lock; whoever gets it commits every item pending at that moment in one call, so the
others usually find theirs already done when they get the lock. Each caller sees the outcome of the
commit that carried its item (its exception, if that commit failed).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass
class _Slot(Generic[T]):
    item: T
    done: bool = False
    error: BaseException | None = None


class GroupCommit(Generic[T]):
    def __init__(self, commit: Callable[[list[T]], None]) -> None:
        self._commit = commit
        self._pending: list[_Slot[T]] = []
        self._pending_lock = threading.Lock()
        self._commit_lock = threading.Lock()

    def submit(self, item: T) -> None:
        """Commit *item* (with whatever else is pending); raises what its commit raised."""
        slot = _Slot(item)
        with self._pending_lock:
            self._pending.append(slot)
        with self._commit_lock:
            if not slot.done:
                with self._pending_lock:
                    batch, self._pending = self._pending, []
                error: BaseException | None = None
                try:
                    self._commit([s.item for s in batch])
                except Exception as exc:  # every caller of this batch gets it
                    error = exc
                for s in batch:
                    s.error, s.done = error, True
        if slot.error is not None:
            raise slot.error
